package iotconnect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/simbulk/simbulk/ingest"
)

// cmpValues are the Connectivity Management Platforms an eUICC registers
// with ("cmp"): the manifest rules check against them, and the simulator
// refuses any other.
var cmpValues = []string{"IOTA_EU", "ARQIA_BR", "THINGSPACE_US"}

// Manifest is what IoT Connect asks of a manifest row: an eUICC by EID,
// with the platform, agreement and locale every registration carries.
func Manifest() ingest.Manifest {
	return ingest.Manifest{
		Required: []string{ingest.ColEID, ingest.ColCMP, ingest.ColEUICCAgreementID, ingest.ColLocaleID},
		Fields:   checkFields,
	}
}

// checkFields applies the register-eUICC body rules to a row's fields,
// so that a row IoT Connect would refuse is never sent. A cmp in the
// wrong case is corrected rather than refused: spreadsheets lower-case
// values, and the platform's name is not in doubt.
func checkFields(c *ingest.FieldCheck) {
	if cmp, ok := c.Require(ingest.ColCMP); ok && !slices.Contains(cmpValues, cmp) {
		if up := strings.ToUpper(cmp); slices.Contains(cmpValues, up) {
			c.Set(ingest.ColCMP, up)
		} else {
			c.Bad(ingest.ColCMP, ingest.CodeBadValue, fmt.Sprintf("cmp must be one of %s", strings.Join(cmpValues, ", ")))
		}
	}
	c.Require(ingest.ColEUICCAgreementID)
	c.Require(ingest.ColLocaleID)
	if d := c.Get(ingest.ColDomainID); d != "" && !validDomainID(d) {
		c.Bad(ingest.ColDomainID, ingest.CodeBadFormat,
			"domain_id must be 1 to 7 groups of 8 letters or digits joined by hyphens, e.g. AB12CD34 or AB12CD34-EF56GH78")
	}
}

// validDomainID matches ^([A-Za-z0-9]{8}-){0,6}[A-Za-z0-9]{8}$ (the
// simulator's domainPattern) without a regular expression, which would
// cost every row of a large manifest far more than this loop.
func validDomainID(s string) bool {
	if len(s)%9 != 8 || len(s) > 7*9-1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i%9 == 8 {
			if s[i] != '-' {
				return false
			}
		} else if !isASCIIAlnum(s[i]) {
			return false
		}
	}
	return true
}

func isASCIIAlnum(b byte) bool {
	l := b | 0x20 // lower case, for letters
	return (l >= 'a' && l <= 'z') || (b >= '0' && b <= '9')
}
