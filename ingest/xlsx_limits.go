package ingest

import (
	"errors"
	"fmt"
)

// Limits on what an XLSX manifest may hold. They keep the reader within a
// fixed memory budget (well under 256 MiB) and a time roughly proportional
// to the file's real content, whatever the file holds: a zip inflates
// about 1000:1, so a few MB on disk can otherwise claim gigabytes.
// A manifest of a million SIMs fits comfortably inside each of them.
const (
	// MaxCellBytes is the longest cell text kept, in bytes of UTF-8. A
	// manifest cell is an identifier or a short note; a longer cell is a
	// row problem and its text is cut at the limit.
	MaxCellBytes = 64 << 10
	// MaxColumns is the widest row: a value beyond column 1,024 is a row
	// problem (in the header, an error). Cells past it are counted, never
	// stored, so a row of a million cells costs no memory.
	MaxColumns = 1024
	// MaxSharedStringBytes caps the text of the shared-string table, which
	// must be held whole while the sheet is read. A 1,000,000-row manifest
	// saved by Excel with EID, ICCID, IMEI and CLI as text holds about
	// 80 MB; 96 MiB leaves room within the MemoryBudget.
	MaxSharedStringBytes = 96 << 20
	// MaxSharedStrings caps the number of items of the shared-string table
	// (that manifest: 4 to 5 million). Empty items count: each costs its
	// offset (4 bytes).
	MaxSharedStrings = 6_000_000
	// MaxSheetBytes caps the uncompressed worksheet (and shared-string)
	// XML: as the zip directory declares it, and as actually read, markup
	// and whitespace included.
	MaxSheetBytes = 2 << 30
	// MaxXMLTokenBytes caps one XML token (a run of text or whitespace, a
	// tag, a comment) as read from the file. The XML decoder holds a token
	// whole, so this bounds its buffer; a token this large cannot be part
	// of a cell within MaxCellBytes even with every character escaped.
	MaxXMLTokenBytes = 1<<20 + MaxCellBytes
	// MaxWorkbookPartBytes caps the small parts read whole: the workbook
	// (sheet names) and its relationships.
	MaxWorkbookPartBytes = 8 << 20
)

// MemoryBudget is the soft memory limit simbulk runs under (the command
// sets it with debug.SetMemoryLimit unless GOMEMLIMIT says otherwise). The
// limits above keep what a manifest makes simbulk hold well inside it; the
// soft limit makes the garbage collector keep the rest inside it too, where
// by default it would let garbage grow as large as what is held.
const MemoryBudget = 224 << 20

// ErrLimit: the manifest holds more than one of the limits above allows.
// A *LimitError says which.
var ErrLimit = errors.New("manifest exceeds a reader limit")

// What to do about a manifest past a limit, for messages.
const (
	adviceCSV   = "save the sheet as CSV UTF-8 and use that file, or check the cell in the spreadsheet"
	adviceSplit = "split the manifest into smaller files, or save the sheet as CSV UTF-8 and use that file"
)

// LimitError says which limit a manifest went past, where, and what to do.
// It matches ErrLimit with errors.Is, and ErrWorkbookTooLarge too when the
// limit is on the workbook's size.
type LimitError struct {
	Limit  string // the constant's name, e.g. "MaxCellBytes"
	Max    int64  // its value
	Found  int64  // what was found; with AtLeast, reading stopped there
	Where  string // "row 7, column C", "the shared-string table"
	Unit   string // "bytes", "columns", "items"
	Of     string // what was counted, after the amount: " of text"
	Advice string

	atLeast  bool
	tooLarge bool
}

func (e *LimitError) Error() string {
	found, limit := fmt.Sprint(e.Found), fmt.Sprint(e.Max)
	if e.Unit == "bytes" {
		found, limit = byteCount(e.Found), byteCount(e.Max)
	} else {
		found, limit = found+" "+e.Unit, limit+" "+e.Unit
	}
	if e.atLeast {
		found = "at least " + found
	}
	return fmt.Sprintf("%s has %s%s, over the limit of %s (%s); %s", e.Where, found, e.Of, limit, e.Limit, e.Advice)
}

// Is makes errors.Is(err, ErrLimit) true, and ErrWorkbookTooLarge for the
// limits on the workbook's size.
func (e *LimitError) Is(target error) bool {
	return target == ErrLimit || (e.tooLarge && target == ErrWorkbookTooLarge)
}

// byteCount is byteSize for values that are not round: "1.5 MiB".
func byteCount(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// xlsxLimits are the limits one reader applies: the constants above,
// smaller in tests.
type xlsxLimits struct {
	cellBytes         int
	columns           int
	sharedStringBytes int64
	sharedStrings     int
	sheetBytes        int64
	tokenBytes        int64
	partBytes         int64
}

func defaultXLSXLimits() xlsxLimits {
	return xlsxLimits{
		cellBytes:         MaxCellBytes,
		columns:           MaxColumns,
		sharedStringBytes: MaxSharedStringBytes,
		sharedStrings:     MaxSharedStrings,
		sheetBytes:        MaxSheetBytes,
		tokenBytes:        MaxXMLTokenBytes,
		partBytes:         MaxWorkbookPartBytes,
	}
}
