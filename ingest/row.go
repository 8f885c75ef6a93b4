package ingest

// Row is a checked manifest row: identifiers normalised to what the provider
// expects (e.g. an MSISDN CLI bracketed, "(+44)7700900123", for a provider
// whose CLIForm says so) and provider fields filled from the row or, where
// the row leaves them empty, from the configured defaults.
type Row struct {
	Number   int    // row as the user sees it (header = 1)
	Provider string // a registered provider (RegisterManifest)
	EID      string
	ICCID    string
	CLI      string
	IMEI     string
	// Fields holds provider fields by canonical column name (cmp,
	// domain_id, account, account_name, first_name, ...). Empty values are
	// left out.
	Fields map[string]string
	// Values are the original cells, in header order, for reports that
	// hand the row back to a person.
	Values []string
}

// Reader streams a manifest: the header first, then one Record per data row.
// Next returns io.EOF after the last row. Blank rows are skipped (but still
// counted in Record.Row numbering).
type Reader interface {
	Header() Header
	Next() (Record, error)
	Close() error
}

// SheetReader is a Reader of one sheet of a workbook (XLSX) that can say
// which sheet it reads and which others there are: a console offers the
// others to a person who uploaded a multi-sheet workbook.
type SheetReader interface {
	Reader
	Sheet() string
	Sheets() []string
}

// OpenOptions choose how a manifest is read.
type OpenOptions struct {
	Sheet string // XLSX sheet name; "" means the first sheet
}
