package ingest

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCSVReader feeds arbitrary bytes to the CSV reader. Whatever the
// input, it must not panic, must end, must number rows as an editor would
// (strictly increasing, below the header), and must give every record at
// least one value per header column so lookups by column never go out of
// range. The committed corpus in testdata/fuzz/FuzzCSVReader holds the
// Excel shapes the reader is built for.
func FuzzCSVReader(f *testing.F) {
	for _, seed := range []string{
		"EID,ICCID\n89049032123451234512345678901235,8944123456789012345\n",
		"\xEF\xBB\xBFICCID;MSISDN\r\n8944123456789012345;447700900123\r\n;;\r\n",
		"\xFF\xFEE\x00I\x00D\x00\t\x00N\x00\r\x00\n\x001\x00\t\x00\"\x00a\x00\r\x00\n\x00b\x00\"\x00\r\x00\n\x00",
		"\xFE\xFF\x00E\x00\t\x00N\x00\n\x001\x00\t\x002",
		"EID,Note\n1,\"a\nb\"\n2,7\" tablet\n3,\"x\"y\n4,ok\n",
		"EID,Note\n1,\"never closed\n2,x\n",
		"sep=;\nEID;Note\n1;a,b\n",
		"EID,Note\r1,Jos\xe9\r2,ok\r",
		"\n\n,,,,\nEID,ICCID,IMEI\n1\n1,2,3,4,5\n \t \n",
		"",
		"\"",
		"E\x00I\x00D\x00\n\x001\x00\n\x00",
		// The hostile shapes of TestCSVHostileBounded, small: the fuzz
		// target also reads every input with a 16-byte cell limit and 8
		// columns, where these cross them.
		"EID,Note\n1," + strings.Repeat("abcdefgh", 8) + "\n2,ok\n",
		"EID,Note\n1,\"" + strings.Repeat("ab,\"\"c\n", 8) + "\"\n2,ok\n",
		"EID,Note\n1,\"" + strings.Repeat("x,y\n", 16),
		"EID" + strings.Repeat(",col", 20) + "\n1\n",
		"EID,Note\n1" + strings.Repeat(",", 20) + "\n2,ok\n",
		"EID,Note\n1,\"abcdefghijklmno\"\"p\"x,z\n2,\"a\"\rb\n",
		"EID,Note\n" + strings.Repeat("1,ok\n", 20) + "2,a\x00b\n3,\x1b[31m\u0085\x7f\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCSV(t, data, defaultCSVLimits())
		fuzzCSV(t, data, csvLimits{cellBytes: 16, columns: 8})
		fuzzSameByteByByte(t, data, defaultCSVLimits())
		fuzzSameByteByByte(t, data, csvLimits{cellBytes: 16, columns: 8})
	})
}

func fuzzCSV(t *testing.T, data []byte, limits csvLimits) {
	r, err := newLimitedCSVReader(bytes.NewReader(data), "", limits)
	if err != nil {
		return
	}
	defer r.Close()
	{
		width := len(r.Header().Names)
		prev := 1 // the header is on line 1 or later
		// Every row consumes at least one byte, so more calls than bytes
		// would mean the reader is stuck.
		for calls := 0; ; calls++ {
			if calls > len(data)+1 {
				t.Fatalf("Next called %d times on %d bytes without io.EOF", calls, len(data))
			}
			rec, err := r.Next()
			var rowErr *RowError
			if err == io.EOF {
				return
			}
			if err != nil && !errors.As(err, &rowErr) {
				return // a fatal error ends the file
			}
			if rec.Row <= prev {
				t.Fatalf("row %d after row %d", rec.Row, prev)
			}
			prev = rec.Row
			if rowErr != nil && rowErr.Row != rec.Row {
				t.Fatalf("RowError row %d for record row %d", rowErr.Row, rec.Row)
			}
			if len(rec.Values) < width {
				t.Fatalf("row %d: %d values for %d header columns", rec.Row, len(rec.Values), width)
			}
			if rec.FieldCount > len(rec.Values) && len(rec.Values) != limits.columns {
				t.Fatalf("row %d: FieldCount %d but only %d values kept", rec.Row, rec.FieldCount, len(rec.Values))
			}
			if len(rec.Values) > max(width, limits.columns) {
				t.Fatalf("row %d: %d values kept, limit %d", rec.Row, len(rec.Values), limits.columns)
			}
			for _, v := range rec.Values {
				if !utf8.ValidString(v) {
					t.Fatalf("row %d: value %q is not UTF-8", rec.Row, v)
				}
				// Bytes that are not UTF-8 became U+FFFD, three bytes for one.
				if raw := len(v) - 2*strings.Count(v, "\uFFFD"); int64(raw) > limits.cellBytes {
					t.Fatalf("row %d: a %d-byte value kept, limit %d", rec.Row, len(v), limits.cellBytes)
				}
			}
		}
	}
}

// fuzzSameByteByByte reads data with and without the reader's shortcuts
// (the plain-line path, quoted text fed in one piece), the second all
// through encoding/csv and the limiter, a line at a time: a shortcut must
// not change a single record, row number, problem or error.
func fuzzSameByteByByte(t *testing.T, data []byte, limits csvLimits) {
	t.Helper()
	slow := limits
	slow.noShortcuts = true
	fastRecs, fastErr := readAllCSV(data, limits)
	slowRecs, slowErr := readAllCSV(data, slow)
	if fastErr != slowErr {
		t.Fatalf("error %q with the shortcuts, %q without", fastErr, slowErr)
	}
	if !reflect.DeepEqual(fastRecs, slowRecs) {
		t.Fatalf("records differ:\nshortcuts    %+v\nno shortcuts %+v", fastRecs, slowRecs)
	}
}

// readAllCSV returns every record and row error of data, and the error
// that ended the reading ("" for io.EOF).
func readAllCSV(data []byte, limits csvLimits) ([]any, string) {
	r, err := newLimitedCSVReader(bytes.NewReader(data), "", limits)
	if err != nil {
		return nil, err.Error()
	}
	defer r.Close()
	out := []any{r.Header()}
	for calls := 0; calls <= len(data)+1; calls++ {
		rec, err := r.Next()
		if err == io.EOF {
			return out, ""
		}
		var rowErr *RowError
		if err != nil && !errors.As(err, &rowErr) {
			return out, err.Error()
		}
		out = append(out, rec)
		if rowErr != nil {
			out = append(out, rowErr.Error())
		}
	}
	return out, "stuck"
}
