package ingest

import "fmt"

// Problem codes. They are part of the product: scripts switch on them and the
// README lists them. Add new ones; never rename.
const (
	CodeMissingColumn   = "missing_column"    // a required column is absent from the header
	CodeMissingValue    = "missing_value"     // a required cell is empty
	CodeBadFormat       = "bad_format"        // wrong length, characters or pattern
	CodeBadChecksum     = "bad_checksum"      // MOD 97-10 or Luhn check digit wrong
	CodeExcelDamage     = "excel_damage"      // value mangled by a spreadsheet (scientific notation, .0, numeric cell)
	CodeDuplicate       = "duplicate"         // identifier already used by an earlier row
	CodeUnknownProvider = "unknown_provider"  // provider is not one simbulk knows
	CodeBadEncoding     = "bad_encoding"      // bytes that are not valid text in the file's encoding
	CodeBadValue        = "bad_value"         // a provider field outside its allowed values
	CodeFieldCount      = "field_count"       // row has more or fewer fields than the header
	CodeUnreadable      = "unreadable"        // file could not be read at all (manifest-level)
	CodeCellTooLong     = "cell_too_long"     // a cell longer than the reader's limit (64 KiB); its value is dropped
	CodeControlChar     = "control_character" // NUL or another control character in a cell
)

// Severity says whether a problem makes the row invalid.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Problem is one thing wrong with one cell of one row.
type Problem struct {
	Row      int      `json:"row"`    // row as the user sees it; 1 is the header
	Column   string   `json:"column"` // canonical column name
	Value    string   `json:"value"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Severity Severity `json:"severity"`
}

func (p Problem) String() string {
	return fmt.Sprintf("row %d, column %s, value %q: %s (%s)", p.Row, p.Column, p.Value, p.Message, p.Code)
}

// Error lets a manifest-level problem travel as an error.
func (p Problem) Error() string { return p.String() }
