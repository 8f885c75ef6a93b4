package ingest

import (
	"strings"
)

// Canonical column names. Headers in a manifest are matched to these through
// Aliases; columns that match nothing are kept as extra columns.
//
// The provider fields are named here rather than by the providers whose
// rules (providers/<name>/manifest.go) check them: a header is matched
// before any row says its provider, and one manifest may mix providers, so
// the column vocabulary belongs to the manifest and is shared by all.
const (
	ColProvider = "provider"
	ColEID      = "eid"
	ColICCID    = "iccid"
	ColCLI      = "cli" // MSISDN or IMSI, whichever the provider keys the SIM by
	ColIMEI     = "imei"

	// eUICC registration
	ColCMP              = "cmp"
	ColDomainID         = "domain_id"
	ColEUICCAgreementID = "euicc_agreement_id"
	ColLocaleID         = "locale_id"

	// SIM records
	ColAccount      = "account"
	ColDescription  = "description"
	ColInventoryRef = "inventory_ref"
	ColTariff       = "tariff"
	ColBundle       = "bundle"
	ColOperator     = "operator"
	ColSOC          = "soc"
	ColPurchaseOrd  = "purchase_order"

	// device activation and its primary place of use
	ColAccountName       = "account_name"
	ColServicePlan       = "service_plan"
	ColCarrierName       = "carrier_name"
	ColMDNZipCode        = "mdn_zip_code"
	ColCarrierIPPoolName = "carrier_ip_pool_name"
	ColTitle             = "title"
	ColFirstName         = "first_name"
	ColMiddleName        = "middle_name"
	ColLastName          = "last_name"
	ColSuffix            = "suffix"
	ColAddressLine1      = "address_line1"
	ColAddressLine2      = "address_line2"
	ColCity              = "city"
	ColState             = "state"
	ColZip               = "zip"
	ColZip4              = "zip4"
	ColCountry           = "country"
)

// Aliases maps a normalised header (see NormaliseHeader) to its canonical
// column. Every canonical name is also an alias of itself.
var Aliases = map[string]string{
	"provider": ColProvider, "platform": ColProvider,

	"eid": ColEID, "euiccid": ColEID, "euicc": ColEID, "esimid": ColEID,

	"iccid": ColICCID, "simnumber": ColICCID, "sim": ColICCID, "simno": ColICCID, "iccidnumber": ColICCID,

	"cli": ColCLI, "msisdn": ColCLI, "imsi": ColCLI, "mdn": ColCLI, "phonenumber": ColCLI,

	"imei": ColIMEI, "imeisv": ColIMEI, "deviceimei": ColIMEI,

	"cmp": ColCMP, "domainid": ColDomainID, "domain": ColDomainID,
	"euiccagreementid": ColEUICCAgreementID, "agreementid": ColEUICCAgreementID,
	"localeid": ColLocaleID, "locale": ColLocaleID,

	"account": ColAccount, "foreignaccountkey": ColAccount, "accountkey": ColAccount,
	"description": ColDescription, "inventoryref": ColInventoryRef, "inventoryreference": ColInventoryRef,
	"tariff": ColTariff, "bundle": ColBundle, "operator": ColOperator, "soc": ColSOC,
	"purchaseorder": ColPurchaseOrd, "po": ColPurchaseOrd,

	"accountname": ColAccountName, "serviceplan": ColServicePlan, "carriername": ColCarrierName,
	"mdnzipcode": ColMDNZipCode, "carrierippoolname": ColCarrierIPPoolName, "ippool": ColCarrierIPPoolName,
	"title": ColTitle, "firstname": ColFirstName, "middlename": ColMiddleName, "lastname": ColLastName,
	"surname": ColLastName, "suffix": ColSuffix,
	"addressline1": ColAddressLine1, "address1": ColAddressLine1, "address": ColAddressLine1, "street": ColAddressLine1,
	"addressline2": ColAddressLine2, "address2": ColAddressLine2,
	"city": ColCity, "state": ColState, "zip": ColZip, "zipcode": ColZip, "postcode": ColZip, "zip4": ColZip4,
	"country": ColCountry,
}

// NormaliseHeader folds a header cell for alias lookup: case, spaces,
// underscores, hyphens and dots are ignored, so "SIM Number", "sim_number"
// and "SIMNumber" are the same column.
func NormaliseHeader(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch r {
		case ' ', '_', '-', '.', '\t', '\u00a0', '\ufeff':
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Header is a manifest's first row: the names as written, in order, and
// where each canonical column sits.
type Header struct {
	Names []string       // as written in the file, in file order
	index map[string]int // canonical column -> position in Names
	// CLIKind is "msisdn" or "imsi" when the CLI column's header says which
	// it holds, "" when it is just "CLI".
	CLIKind string
}

// NewHeader maps header cells to canonical columns. When two cells map to
// the same canonical column the first wins and the second is kept as an
// extra column, so nothing the user wrote is dropped.
func NewHeader(names []string) Header {
	h := Header{Names: append([]string(nil), names...), index: make(map[string]int)}
	for i, n := range names {
		canon, ok := Aliases[NormaliseHeader(n)]
		if !ok {
			continue
		}
		if _, taken := h.index[canon]; !taken {
			h.index[canon] = i
			if canon == ColCLI {
				switch NormaliseHeader(n) {
				case "msisdn", "mdn", "phonenumber":
					h.CLIKind = "msisdn"
				case "imsi":
					h.CLIKind = "imsi"
				}
			}
		}
	}
	return h
}

// Index returns the position of a canonical column, or -1.
func (h Header) Index(canonical string) int {
	if i, ok := h.index[canonical]; ok {
		return i
	}
	return -1
}

// Has reports whether the manifest has a canonical column.
func (h Header) Has(canonical string) bool { return h.Index(canonical) >= 0 }

// Name returns the header as the user wrote it for a canonical column, or
// the canonical name when the manifest lacks it (values then come from
// defaults or flags).
func (h Header) Name(canonical string) string {
	if i := h.Index(canonical); i >= 0 {
		return h.Names[i]
	}
	return canonical
}

// Record is one data row as read from the file, before any checking.
type Record struct {
	// Row is the number a person sees in their editor or spreadsheet for
	// this row: the header is row 1. For CSV with quoted newlines this is
	// the line on which the record starts.
	Row int
	// Values are the cells in header order. A row with the wrong number of
	// fields keeps what it had; FieldCount tells the validator.
	Values []string
	// Numeric marks cells that an XLSX file stores as numbers rather than
	// text (nil for CSV). Identifiers in numeric cells may have lost digits.
	Numeric []bool
	// FieldCount is the number of fields the file actually had on this row.
	FieldCount int
	// BadEncoding is set when the row held bytes that are not valid text in
	// the file's encoding; they were replaced with U+FFFD.
	BadEncoding bool
	// Problems are what the reader found wrong in the row while reading it
	// (a cell over the size limit, whose value it dropped). The validator
	// reports them with its own.
	Problems []Problem

	// noControls is set by a reader that saw no byte that could start a
	// control character before this row: the validator then need not
	// look for one in every cell. The zero value means it must.
	noControls bool
}

// Get returns the trimmed value of a canonical column, or "".
func (r Record) Get(h Header, canonical string) string {
	i := h.Index(canonical)
	if i < 0 || i >= len(r.Values) {
		return ""
	}
	return strings.TrimSpace(r.Values[i])
}

// IsNumeric reports whether the cell of a canonical column was a numeric
// XLSX cell.
func (r Record) IsNumeric(h Header, canonical string) bool {
	i := h.Index(canonical)
	return i >= 0 && i < len(r.Numeric) && r.Numeric[i]
}
