package ingest

// Row is a checked manifest row: identifiers normalised to what the provider
// expects (e.g. an MSISDN CLI bracketed, "(+44)7700900123", for a provider
// whose CLIForm says so) and provider fields filled from the row or, where
// the row leaves them empty, from the configured defaults.
//
// The provider fields are read through Field and Fields rather than held
// in a map: a map per row was a fifth of a large manifest's validation,
// and most callers (a count, a report of problems) never look at them.
type Row struct {
	Number   int    // row as the user sees it (header = 1)
	Provider string // a registered provider (RegisterManifest)
	EID      string
	ICCID    string
	CLI      string
	IMEI     string
	// Values are the original cells, in header order, for reports that
	// hand the row back to a person. The provider fields are read from
	// them, so a caller that changes them changes its fields too.
	Values []string

	fields *fieldLayout // where the fields sit; nil when the row has none
	set    []fieldValue // fields the provider's rule set (normalised), in order
}

// fieldValue is one provider field a provider's rule set on a row.
type fieldValue struct{ name, value string }

// Field returns provider field col (a canonical column name such as cmp,
// domain_id, account, account_name, first_name), trimmed: the row's cell,
// or the provider's configured default when the cell is empty; "" when
// the row has neither.
func (r Row) Field(col string) string {
	for i := len(r.set) - 1; i >= 0; i-- {
		if r.set[i].name == col {
			return r.set[i].value
		}
	}
	if r.fields == nil {
		return ""
	}
	return r.fields.get(r.Values, col)
}

// Fields returns the provider fields by canonical column name, as Field
// gives them; empty values are left out. Each call builds a new map, the
// caller's to keep.
func (r Row) Fields() map[string]string {
	// Sized to what it will hold: most rows fill a few of a manifest's
	// many field columns, and a map with room for eight or fewer entries
	// is a fraction of the cost of a larger one.
	n := len(r.set)
	if r.fields != nil {
		for i := range r.fields.slots {
			if r.fields.slot(r.Values, i) != "" {
				n++
			}
		}
	}
	f := make(map[string]string, n)
	if r.fields != nil {
		for i := range r.fields.slots {
			if val := r.fields.slot(r.Values, i); val != "" {
				f[r.fields.slots[i].name] = val
			}
		}
	}
	for _, s := range r.set {
		f[s.name] = s.value
	}
	return f
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
