package ingest

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/samples/peakmem"
)

// Hostile workbooks are written part by part: each part is a prefix, a
// chunk repeated n times and a suffix. Every piece is deflated on its own
// and the compressed chunk is repeated, so a 1.9 GB part costs a few MB on
// disk and well under a second to write; compressing 1.9 GB for real
// would take longer than reading it back.
type xlsxPart struct {
	name                  string
	prefix, chunk, suffix string
	n                     int
	// declared, when not 0, is the uncompressed size the zip directory
	// claims instead of the true one.
	declared uint64
}

func xlsxHonestPart(name, body string) xlsxPart { return xlsxPart{name: name, prefix: body} }

// xlsxDeflate compresses s on its own. A segment that is not final ends
// with a sync flush, so segments can be concatenated into one stream.
func xlsxDeflate(tb testing.TB, s string, final bool) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write([]byte(s)); err != nil {
		tb.Fatal(err)
	}
	if final {
		err = w.Close()
	} else {
		err = w.Flush()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func writeXLSXParts(tb testing.TB, dir string, parts ...xlsxPart) string {
	tb.Helper()
	path := filepath.Join(dir, "hostile.xlsx")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, p := range parts {
		pre, chunk, suf := xlsxDeflate(tb, p.prefix, false), xlsxDeflate(tb, p.chunk, false), xlsxDeflate(tb, p.suffix, true)
		crc := crc32.NewIEEE()
		io.WriteString(crc, p.prefix)
		cb := []byte(p.chunk)
		for range p.n {
			crc.Write(cb)
		}
		io.WriteString(crc, p.suffix)
		size := uint64(len(p.prefix)) + uint64(len(p.chunk))*uint64(p.n) + uint64(len(p.suffix))
		if p.declared != 0 {
			size = p.declared
		}
		w, err := zw.CreateRaw(&zip.FileHeader{
			Name: p.name, Method: zip.Deflate, CRC32: crc.Sum32(),
			CompressedSize64:   uint64(len(pre)) + uint64(len(chunk))*uint64(p.n) + uint64(len(suf)),
			UncompressedSize64: size,
		})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(pre)
		for range p.n {
			w.Write(chunk)
		}
		if _, err := w.Write(suf); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// xlsxHostileBook is the hand-made workbook of xlsx_test.go with its sheet
// and shared strings replaced.
func xlsxHostileBook(tb testing.TB, dir string, sheet, sst xlsxPart) string {
	sheet.name, sst.name = "xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"
	return writeXLSXParts(tb, dir,
		xlsxHonestPart("[Content_Types].xml", contentTypesXML),
		xlsxHonestPart("_rels/.rels", rootRelsXML),
		xlsxHonestPart("xl/workbook.xml", workbookXML),
		xlsxHonestPart("xl/_rels/workbook.xml.rels", workbookRelsXML),
		sst, sheet,
	)
}

const (
	xlsxSheetHead = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" + `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`
	xlsxSheetTail = `</sheetData></worksheet>`
	xlsxSSTHead   = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" + `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`
	// xlsxSSTRow uses the shared-string table, so that it is read.
	xlsxSSTRow     = `<row r="1"><c t="s"><v>0</v></c><c t="inlineStr"><is><t>ICCID</t></is></c></row>`
	xlsxHeaderRow  = `<row r="1"><c t="inlineStr"><is><t>ICCID</t></is></c><c t="inlineStr"><is><t>Note</t></is></c></row>`
	hostileGoodRow = `<row r="3"><c t="inlineStr"><is><t>8944123456789012345</t></is></c></row>`
	xlsxMiB        = 1 << 20
	xlsxSpaceChunk = "                                                                " // 64 bytes
)

func xlsxPlainSheet(rows string) xlsxPart {
	return xlsxPart{prefix: xlsxSheetHead + rows + xlsxSheetTail}
}
func xlsxPlainSST() xlsxPart { return xlsxPart{prefix: sharedStringsXML} }

// xlsxEmptyItems is a shared-string table of mib MiB of <si/>.
func xlsxEmptyItems(mib int) xlsxPart {
	return xlsxPart{prefix: xlsxSSTHead, chunk: strings.Repeat("<si/>", xlsxMiB/5), n: mib, suffix: "</sst>"}
}

// spaces is mib MiB of spaces in one run, or in 64 KiB runs between empty
// comments, so that no single XML token is large.
func xlsxSpaces(_ int, split bool) string {
	run := strings.Repeat(xlsxSpaceChunk, xlsxMiB/len(xlsxSpaceChunk))
	if split {
		run = strings.Repeat(strings.Repeat(xlsxSpaceChunk, 1024)+"<!---->", 16)
	}
	return run
}

// xlsxHostileCase is one workbook and what reading it must end with.
type xlsxHostileCase struct {
	name string
	slow bool // skipped with -short
	book func(tb testing.TB, dir string) string
	// want is a substring of the fatal error; rowWant, of a row error.
	want, rowWant string
	// ok: the workbook is within every limit and must read without error.
	ok bool
	is error
}

var xlsxHostileCases = []xlsxHostileCase{
	{
		name: "empty shared strings 200MB",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPlainSheet(xlsxSSTRow), xlsxEmptyItems(200))
		},
		want: "MaxSharedStrings", is: ErrLimit,
	},
	{
		name: "empty shared strings 1.9GB", slow: true,
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPlainSheet(xlsxSSTRow), xlsxEmptyItems(1900))
		},
		want: "MaxSharedStrings", is: ErrLimit,
	},
	{
		name: "shared strings text 150MB",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPlainSheet(xlsxSSTRow), xlsxPart{
				prefix: xlsxSSTHead, chunk: "<si><t>" + strings.Repeat("x", 1000) + "</t></si>", n: 150_000, suffix: "</sst>"})
		},
		want: "MaxSharedStringBytes", is: ErrLimit,
	},
	{
		// Near both shared-string limits: 5 million items of 20
		// characters (95 MB), what a wide million-row manifest saved by
		// Excel holds. Read whole, within the memory budget.
		name: "shared strings just under the limits", ok: true, slow: true,
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPlainSheet(xlsxSSTRow), xlsxPart{
				prefix: xlsxSSTHead, chunk: "<si><t>89441234567890123456</t></si>", n: 5_000_000, suffix: "</sst>"})
		},
	},
	{
		name: "one 100MB inline cell",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPart{
				prefix: xlsxSheetHead + xlsxHeaderRow + `<row r="2"><c t="inlineStr"><is><t>`,
				chunk:  strings.Repeat("x", xlsxMiB), n: 100,
				suffix: `</t></is></c></row>` + hostileGoodRow + xlsxSheetTail}, xlsxPlainSST())
		},
		want: "MaxCellBytes", is: ErrLimit,
	},
	{
		name: "one 100MB shared string",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPlainSheet(xlsxHeaderRow+`<row r="2"><c t="s"><v>0</v></c></row>`), xlsxPart{
				prefix: xlsxSSTHead + "<si><t>", chunk: strings.Repeat("x", xlsxMiB), n: 100, suffix: "</t></si></sst>"})
		},
		want: "MaxCellBytes", is: ErrLimit,
	},
	{
		name: "1.5GB of whitespace in the sheet",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPart{
				prefix: xlsxSheetHead + xlsxHeaderRow, chunk: xlsxSpaces(1, false), n: 1500,
				suffix: hostileGoodRow + xlsxSheetTail}, xlsxPlainSST())
		},
		want: "MaxCellBytes", is: ErrLimit,
	},
	{
		name: "1.5GB of whitespace before the header",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPart{
				prefix: xlsxSheetHead, chunk: xlsxSpaces(1, false), n: 1500,
				suffix: xlsxHeaderRow + hostileGoodRow + xlsxSheetTail}, xlsxPlainSST())
		},
		want: "MaxCellBytes", is: ErrLimit,
	},
	{
		name: "a row of 1,000,000 cells",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPart{
				prefix: xlsxSheetHead + xlsxHeaderRow + `<row r="2">`,
				chunk:  strings.Repeat(`<c><v>1</v></c>`, 1000), n: 1000,
				suffix: `</row>` + hostileGoodRow + xlsxSheetTail}, xlsxPlainSST())
		},
		rowWant: "MaxColumns", is: ErrLimit,
	},
	{
		name: "header of 1,000,000 cells",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPart{
				prefix: xlsxSheetHead + `<row r="1">`,
				chunk:  strings.Repeat(`<c t="inlineStr"><is><t>h</t></is></c>`, 1000), n: 1000,
				suffix: `</row>` + hostileGoodRow + xlsxSheetTail}, xlsxPlainSST())
		},
		want: "MaxColumns", is: ErrLimit,
	},
	{
		name: "sheet declares 1KiB but inflates to 1.5GB",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPart{
				prefix: xlsxSheetHead + xlsxHeaderRow, chunk: strings.Repeat(hostileGoodRow, xlsxMiB/len(hostileGoodRow)), n: 1500,
				suffix: xlsxSheetTail, declared: 1024}, xlsxPlainSST())
		},
		want: "damaged",
	},
	{
		name: "sheet declares 3GiB",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPart{prefix: xlsxSheetHead + xlsxHeaderRow + xlsxSheetTail, declared: 3 << 30}, xlsxPlainSST())
		},
		want: "MaxSheetBytes", is: ErrWorkbookTooLarge,
	},
	{
		name: "malformed sheet XML",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPlainSheet(xlsxHeaderRow+`<row r="2"><c><v>1</v></row>`+hostileGoodRow), xlsxPlainSST())
		},
		want: "the worksheet XML is damaged",
	},
	{
		name: "malformed shared strings XML",
		book: func(tb testing.TB, dir string) string {
			return xlsxHostileBook(tb, dir, xlsxPlainSheet(xlsxHeaderRow), xlsxPart{prefix: xlsxSSTHead + "<si><t>a</si></sst>"})
		},
		want: "damaged",
	},
}

// xlsxHostileResult is what the child reports.
type xlsxHostileResult struct {
	Err       string
	RowErrs   []string
	Rows      int
	PeakBytes uint64
	Millis    int64
	IsLimit   bool
	IsLarge   bool
}

// TestHelperOpen is the child process of TestXLSXHostileMemory: it reads
// the workbook named by SIMBULK_HOSTILE_FILE and prints what happened and
// its own peak RSS.
func TestHelperOpen(t *testing.T) {
	path := os.Getenv("SIMBULK_HOSTILE_FILE")
	if path == "" {
		t.Skip("run by TestXLSXHostileMemory in a child process")
	}
	debug.SetMemoryLimit(MemoryBudget) // as simbulk itself runs
	start := time.Now()
	var res xlsxHostileResult
	r, err := Open(path, OpenOptions{})
	if err == nil {
		for {
			_, err = r.Next()
			var re *RowError
			if errors.As(err, &re) {
				res.RowErrs = append(res.RowErrs, re.Error())
				continue
			}
			if err != nil {
				break
			}
			res.Rows++
		}
		r.Close()
		if err == io.EOF {
			err = nil
		}
	}
	if err != nil {
		res.Err = err.Error()
		res.IsLimit = errors.Is(err, ErrLimit)
		res.IsLarge = errors.Is(err, ErrWorkbookTooLarge)
	}
	for _, s := range res.RowErrs {
		res.IsLimit = res.IsLimit || strings.Contains(s, "limit")
	}
	res.Millis = time.Since(start).Milliseconds()
	res.PeakBytes = peakmem.RSS()
	out, _ := json.Marshal(res)
	fmt.Printf("\nHOSTILE %s\n", out)
}

// TestXLSXHostileMemory reads each hostile workbook in a child process,
// under a deadline, and checks the child's peak RSS.
func TestXLSXHostileMemory(t *testing.T) {
	for _, tc := range xlsxHostileCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.slow && (testing.Short() || xlsxRace) {
				t.Skip("slow variant")
			}
			dir := t.TempDir()
			path := tc.book(t, dir)
			// The deadline only catches a reader that never ends; it is
			// generous because the race detector on a loaded 2-core
			// machine makes an honest read of 200 MB take minutes.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperOpen$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SIMBULK_HOSTILE_FILE="+path, "TMPDIR="+dir)
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, &buf
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The parent watches the child's peak too, so that a child
			// killed by the deadline still reports what it reached.
			watched := make(chan uint64)
			go func() { watched <- watchPeak(cmd.Process.Pid, ctx) }()
			err := cmd.Wait()
			took := time.Since(start)
			cancel()
			seen := <-watched
			out := buf.Bytes()
			if err != nil {
				t.Fatalf("child failed after %v (peak RSS seen %d MiB): %v\n%s", took, seen>>20, err, xlsxTail(out))
			}
			i := bytes.LastIndex(out, []byte("HOSTILE "))
			if i < 0 {
				t.Fatalf("child said nothing:\n%s", xlsxTail(out))
			}
			var res xlsxHostileResult
			if err := json.Unmarshal(bytes.TrimSpace(bytes.SplitN(out[i+len("HOSTILE "):], []byte("\n"), 2)[0]), &res); err != nil {
				t.Fatal(err)
			}
			t.Logf("peak %d MiB, read in %d ms (child ran %v); err=%q rowErrs=%d rows=%d",
				res.PeakBytes>>20, res.Millis, took.Round(time.Millisecond), xlsxClip(res.Err), len(res.RowErrs), res.Rows)
			if res.PeakBytes >= 256<<20 && !xlsxRace {
				t.Errorf("peak RSS %d MiB, want < 256 MiB", res.PeakBytes>>20)
			}
			if left, _ := os.ReadDir(dir); len(left) != 1 {
				t.Errorf("files left behind in TMPDIR: %v", left)
			}
			switch {
			case tc.ok && res.Err != "":
				t.Errorf("a workbook within the limits failed: %q", res.Err)
			case tc.want != "" && !strings.Contains(res.Err, tc.want):
				t.Errorf("error = %q, want %q", res.Err, tc.want)
			case tc.rowWant != "" && (len(res.RowErrs) == 0 || !strings.Contains(res.RowErrs[0], tc.rowWant)):
				t.Errorf("row errors = %q (fatal %q), want %q", res.RowErrs, res.Err, tc.rowWant)
			case tc.is == ErrLimit && !res.IsLimit, tc.is == ErrWorkbookTooLarge && !res.IsLarge:
				t.Errorf("error %q does not wrap %v", res.Err, tc.is)
			}
		})
	}
}

// watchPeak polls a child's VmHWM until ctx ends.
func watchPeak(pid int, ctx context.Context) uint64 {
	var peak uint64
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(b), "\n") {
			var kb uint64
			if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
				peak = max(peak, kb<<10)
			}
		}
		select {
		case <-ctx.Done():
			return peak
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func xlsxTail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}

func xlsxClip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
