package thingspace

import (
	"strings"

	"github.com/simbulk/simbulk/ingest"
)

// The primary place of use is all or nothing: giving any of its fields
// requires the ones ThingSpace marks required, since an activate request
// carries it whole or not at all.
var (
	placeOfUseFields = []string{ingest.ColTitle, ingest.ColFirstName, ingest.ColMiddleName, ingest.ColLastName, ingest.ColSuffix,
		ingest.ColAddressLine1, ingest.ColAddressLine2, ingest.ColCity, ingest.ColState, ingest.ColZip, ingest.ColZip4, ingest.ColCountry}
	placeOfUseRequired = []string{ingest.ColFirstName, ingest.ColLastName, ingest.ColAddressLine1, ingest.ColCity,
		ingest.ColState, ingest.ColZip, ingest.ColCountry}
)

// needPlaceOfUse says, in a missing field's message, when the place of
// use's required fields are needed.
const needPlaceOfUse = "when a primary place of use (name or address) is given"

// Manifest is what ThingSpace asks of a manifest row: an eUICC device by
// EID, under an account, with an optional primary place of use.
func Manifest() ingest.Manifest {
	return ingest.Manifest{
		Required: []string{ingest.ColEID, ingest.ColAccountName},
		Groups:   []ingest.FieldGroup{{Any: placeOfUseFields, Required: placeOfUseRequired}},
		Fields:   checkFields,
	}
}

// checkFields applies the activate request's documented field rules (the
// simulator's validateActivate) to a row's fields, so that one bad row
// never sinks the batch of 100 it would share a request with. State and
// country codes in the wrong case are corrected rather than refused.
func checkFields(c *ingest.FieldCheck) {
	if name, ok := c.Require(ingest.ColAccountName); ok && !validAccountName(name) {
		c.Bad(ingest.ColAccountName, ingest.CodeBadFormat,
			"account_name must be 10 digits, a hyphen and 5 digits, e.g. 0000123456-00001; if leading zeros are missing, format the column as Text")
	}
	if z := c.Get(ingest.ColMDNZipCode); z != "" && !allDigits(z, 5, 5) {
		c.Bad(ingest.ColMDNZipCode, ingest.CodeBadFormat,
			"mdn_zip_code must be a 5-digit ZIP code, e.g. 02134; if a leading zero is missing, format the column as Text")
	}
	inUse := false
	for _, col := range placeOfUseFields {
		if c.Get(col) != "" {
			inUse = true
			break
		}
	}
	if !inUse {
		return
	}
	for _, col := range placeOfUseRequired {
		val, ok := c.RequireWhen(col, needPlaceOfUse)
		if !ok {
			continue
		}
		if bad := checkPlaceOfUse(c, col, val); bad != "" {
			c.Bad(col, ingest.CodeBadFormat, bad)
		}
	}
	if z := c.Get(ingest.ColZip4); z != "" && !allDigits(z, 4, 4) {
		c.Bad(ingest.ColZip4, ingest.CodeBadFormat, "zip4 must be the 4 digits of a ZIP+4 code")
	}
}

// checkPlaceOfUse checks one given field of the place of use, correcting
// the case of a state or country code, and returns what is wrong with it
// ("" when nothing is).
func checkPlaceOfUse(c *ingest.FieldCheck, col, val string) string {
	switch col {
	case ingest.ColFirstName:
		if !validName(val, 20) {
			return "first_name must be at most 20 characters: letters A-Z, digits, space, - ! #"
		}
	case ingest.ColLastName:
		if !validName(val, 25) {
			return "last_name must be at most 25 characters: letters A-Z, digits, space, - ! #"
		}
	case ingest.ColState:
		if len(val) != 2 || !isASCIILetter(val[0]) || !isASCIILetter(val[1]) {
			return "state must be a two-letter US state code, e.g. TX"
		}
		c.Set(col, strings.ToUpper(val))
	case ingest.ColZip:
		if !allDigits(val, 5, 5) {
			return "zip must be a 5-digit ZIP code, e.g. 02134; if a leading zero is missing, format the column as Text"
		}
	case ingest.ColCountry:
		up := strings.ToUpper(val)
		if up != "US" && up != "USA" {
			return "country must be US or USA: ThingSpace's primary place of use is a US address"
		}
		c.Set(col, up)
	}
	return ""
}

// validAccountName matches ThingSpace account names, ^\d{10}-\d{5}$.
func validAccountName(s string) bool {
	return len(s) == 16 && s[10] == '-' && allDigits(s[:10], 10, 10) && allDigits(s[11:], 5, 5)
}

// validName applies ThingSpace's name rule: up to max characters, each a
// letter or digit, space, hyphen, exclamation mark or pound sign.
func validName(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case isASCIILetter(b), b >= '0' && b <= '9', b == ' ', b == '-', b == '!', b == '#':
		default:
			return false
		}
	}
	return true
}

func isASCIILetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }
