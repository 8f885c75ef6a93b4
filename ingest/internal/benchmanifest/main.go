// Command benchmanifest measures the CPU-bound work of simbulk against
// its floors, the least any program doing the same job must do, and
// prints one table with the ratios. `make bench` runs it. The work items:
//
//	validate narrow  a ThingSpace manifest of five columns (provider, eid,
//	                 iccid, account_name, service_plan), validated as
//	                 `simbulk validate` does, against encoding/csv reading
//	                 it with ReuseRecord and a 64 KiB bufio, counting
//	                 records;
//	validate wide    the mixed sample layout (every provider's columns),
//	                 against the same floor;
//	load narrow      the narrow manifest loaded into a fresh checkpoint
//	                 (pipeline.Load: the `took=` of "manifest loaded"),
//	                 against one prepared INSERT per row (run id, row,
//	                 provider, state, eid, iccid, the whole record as
//	                 text) into an equivalent table in 10,000-row
//	                 transactions, WAL, synchronous=NORMAL, reading with
//	                 encoding/csv;
//	engine           the rollout engine against a bare errgroup loop, at
//	                 1 ms and 20 ms simulator latency, when -engine names
//	                 the benchrollout binary (see pipeline/internal/benchrollout).
//
// Each phase runs in a child process of its own (this program again, with
// -phase), so that the peak resident set size the kernel reports belongs
// to that phase alone; the children also sample the Go heap. Timings on a
// shared machine vary from run to run, so each floor and its simbulk phase
// take turns, -runs times, and the table shows the median times, the
// ratio of the medians, and the largest peaks. Two sizes show whether
// memory stays flat as the row count grows. The peak heap is the Go
// heap's: validation's duplicate index keeps its large tables outside it
// (ingest/dupmem.go), so only the peak RSS counts them.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	_ "github.com/mattn/go-sqlite3" // the load floor's driver, the checkpoint's own

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	// The shipped providers' manifest rules, which the validation measured
	// here applies.
	_ "github.com/simbulk/simbulk/providers/all"
	"github.com/simbulk/simbulk/providers/thingspace"
	"github.com/simbulk/simbulk/samples"
	"github.com/simbulk/simbulk/samples/peakmem"
)

// Goals the table is read against; nothing fails when they are missed,
// because timings depend on the machine.
const (
	goalValidateRatio = 2.0
	goalLoadRatio     = 2.5
	goalPeakMiB       = 200
	goalPeakGrowth    = 1.3 // validation's peak RSS at the large size over the small
)

func main() {
	rows := flag.String("rows", "100000,1000000", "comma-separated manifest sizes in rows")
	loadRows := flag.String("load-rows", "", "comma-separated sizes of the load rows (default: the largest of -rows)")
	dir := flag.String("dir", "", "directory for the generated manifests and checkpoints (default: a temporary one, removed afterwards)")
	phase := flag.String("phase", "", "internal: run one phase on -file and print its measurements as JSON")
	file := flag.String("file", "", "internal: the manifest for -phase")
	profile := flag.String("cpuprofile", "", "write a CPU profile of each phase to `DIR` (for go tool pprof; the last run's)")
	runs := flag.Int("runs", 3, "run each phase this many times and report the median time")
	engine := flag.String("engine", "", "the benchrollout `binary`, to add the engine rows (empty: they are not measured here)")
	only := flag.String("only", "", "measure only the rows whose work starts with this (\"validate\", \"load\", \"validate wide\"); empty: all")
	flag.Parse()

	var err error
	switch {
	case *phase != "":
		err = child(*phase, *file, *profile, os.Stdout)
	case *runs < 1:
		err = fmt.Errorf("-runs %d: need at least one run", *runs)
	default:
		err = parent(config{rows: *rows, loadRows: *loadRows, dir: *dir, profile: *profile, runs: *runs, engine: *engine, only: *only}, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmanifest:", err)
		os.Exit(1)
	}
}

type config struct {
	rows, loadRows string
	dir, profile   string
	runs           int
	engine         string
	only           string // a prefix of the works to measure; "" for all
}

// measurement is what a child reports for one phase.
type measurement struct {
	Rows     int     `json:"rows"`
	Seconds  float64 `json:"seconds"`
	PeakHeap uint64  `json:"peak_heap"` // live heap objects, sampled
	PeakRSS  uint64  `json:"peak_rss"`  // kernel's maximum resident set size
}

// runsFor is how many times a pair whose floor took floorSeconds runs:
// at least the -runs asked for, and more for a short one, so that each
// side measures about a second in all (up to 15 runs). A phase of a tenth
// of a second is at the mercy of one busy moment of this shared machine:
// at 100,000 rows the median of three moved validation's ratio between
// 2.1x and 3.9x from one make bench to the next.
func runsFor(runs int, floorSeconds float64) int {
	const measured, most = 1.0, 15
	if floorSeconds <= 0 {
		return runs
	}
	return max(runs, min(most, int(math.Ceil(measured/floorSeconds))|1))
}

func median(v []float64) float64 {
	v = slices.Sorted(slices.Values(v))
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// summarise combines the runs of one phase: the median time, the largest
// peaks.
func summarise(runs []measurement) measurement {
	secs := make([]float64, len(runs))
	s := measurement{Rows: runs[0].Rows}
	for i, m := range runs {
		secs[i] = m.Seconds
		s.PeakHeap = max(s.PeakHeap, m.PeakHeap)
		s.PeakRSS = max(s.PeakRSS, m.PeakRSS)
	}
	s.Seconds = median(secs)
	return s
}

// Phases: each work item's floor and simbulk's own.
const (
	phaseRead        = "read"
	phaseValidate    = "validate"
	phaseInsertFloor = "insert"
	phaseLoad        = "load"
)

// layout is a generated manifest's shape.
type layout struct {
	name   string
	header []string
	record func(i int) []string
}

var (
	narrow = layout{"narrow", []string{ingest.ColProvider, ingest.ColEID, ingest.ColICCID, ingest.ColAccountName, ingest.ColServicePlan},
		func(i int) []string {
			d := samples.NewDevice(thingspace.Name, i+1)
			return []string{d.Provider, d.EID, d.ICCID, d.AccountName, d.ServicePlan}
		}}
	wide = layout{"wide", samples.Columns, func(i int) []string {
		return samples.NewDevice(samples.Providers[i%len(samples.Providers)], i+1).Record()
	}}
)

// item is one row of the table: a floor phase and simbulk's phase on one
// manifest.
type item struct {
	work         string
	rows         int
	file         string
	bytes        int64
	floor, simb  string // phases
	floorLabel   string
	goal         float64
	floorM, simM measurement
}

func parseSizes(flagName, list string) ([]int, error) {
	var sizes []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive row count", flagName, s)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

func parent(c config, out io.Writer) error {
	sizes, err := parseSizes("-rows", c.rows)
	if err != nil {
		return err
	}
	loadSizes := []int{slices.Max(sizes)}
	if c.loadRows != "" {
		if loadSizes, err = parseSizes("-load-rows", c.loadRows); err != nil {
			return err
		}
	}
	if c.dir == "" {
		tmp, err := os.MkdirTemp("", "simbulk-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		c.dir = tmp
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	files := map[string]int64{}
	manifest := func(l layout, n int) (string, int64, error) {
		path := filepath.Join(c.dir, fmt.Sprintf("%s-%d.csv", l.name, n))
		if size, ok := files[path]; ok {
			return path, size, nil
		}
		fmt.Fprintf(os.Stderr, "writing %d rows to %s\n", n, path)
		size, err := writeManifest(path, l, n)
		files[path] = size
		return path, size, err
	}
	// -only keeps the rows asked for, and only their manifests are
	// written: a helper tuning one phase need not wait for the others.
	var items []*item
	add := func(work string, l layout, n int, floor, simb, floorLabel string, goal float64) error {
		if !strings.HasPrefix(work, c.only) {
			return nil
		}
		path, size, err := manifest(l, n)
		if err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
		items = append(items, &item{work: work, rows: n, file: path, bytes: size,
			floor: floor, simb: simb, floorLabel: floorLabel, goal: goal})
		return nil
	}
	for _, l := range []layout{narrow, wide} {
		for _, n := range sizes {
			if err := add("validate "+l.name, l, n, phaseRead, phaseValidate, "encoding/csv read", goalValidateRatio); err != nil {
				return err
			}
		}
	}
	for _, n := range loadSizes {
		if err := add("load narrow", narrow, n, phaseInsertFloor, phaseLoad, "prepared INSERT", goalLoadRatio); err != nil {
			return err
		}
	}
	if len(items) == 0 && c.only != "" {
		return fmt.Errorf("-only %q matches no work (validate narrow, validate wide, load narrow)", c.only)
	}

	for _, it := range items {
		var floors, sims []measurement
		runs := c.runs
		for run := 1; run <= runs; run++ {
			for _, ph := range []string{it.floor, it.simb} {
				fmt.Fprintf(os.Stderr, "%s %d rows: %s, run %d of %d\n", it.work, it.rows, ph, run, runs)
				m, err := runChild(self, ph, it.file, c.profile)
				if err != nil {
					return err
				}
				if m.Rows != it.rows {
					return fmt.Errorf("%s of %s read %d rows, want %d", ph, it.file, m.Rows, it.rows)
				}
				if ph == it.floor {
					floors = append(floors, m)
				} else {
					sims = append(sims, m)
				}
			}
			if run == 1 {
				runs = runsFor(c.runs, floors[0].Seconds)
			}
		}
		it.floorM, it.simM = summarise(floors), summarise(sims)
	}
	var engineRows []engineRow
	if c.engine != "" {
		if engineRows, err = runEngine(c.engine, c.runs); err != nil {
			return err
		}
	}

	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "work\trows\tfile\tfloor\tfloor s\tsimbulk s\tratio\tgoal\tfloor peak RSS\tsimbulk peak RSS\tsimbulk peak heap\n")
	for _, it := range items {
		ratio := it.simM.Seconds / it.floorM.Seconds
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.3f\t%.3f\t%.2fx\t<= %.1fx %s\t%s\t%s\t%s\n", it.work, it.rows, peakmem.MiB(uint64(it.bytes)), it.floorLabel,
			it.floorM.Seconds, it.simM.Seconds, ratio, it.goal, verdict(ratio <= it.goal),
			peakmem.MiB(it.floorM.PeakRSS), peakmem.MiB(it.simM.PeakRSS), peakmem.MiB(it.simM.PeakHeap))
	}
	for _, e := range engineRows {
		ratio := e.simbulk / e.floor
		fmt.Fprintf(tw, "%s\t%d\t-\tbare errgroup loop\t%.3f\t%.3f\t%.2fx\t<= %.2fx %s\t-\t-\t-\n", e.work, e.rows,
			e.floor, e.simbulk, ratio, e.goal, verdict(ratio <= e.goal))
	}
	if c.engine == "" {
		fmt.Fprintf(tw, "engine 1 ms, 20 ms\t-\t-\tbare errgroup loop\t-\t-\t-\t<= 1.30x, 1.05x\t-\t-\t-\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\ntimes: median of %d runs or more (a phase under a second: until each side has about a second), each floor and simbulk taking turns; ratio: of the medians; peaks: the largest\n", c.runs)
	if c.engine == "" {
		fmt.Fprintln(out, "engine rows: not measured here (no -engine); make bench passes the benchrollout binary")
	}
	memoryVerdicts(out, items)
	return nil
}

// memoryVerdicts reads validation's peak memory against its goals: under
// goalPeakMiB at every size, and growing at most goalPeakGrowth times
// from the smallest size to the largest.
func memoryVerdicts(out io.Writer, items []*item) {
	byWork := map[string][]*item{}
	var works []string
	for _, it := range items {
		if it.simb != phaseValidate {
			continue
		}
		if byWork[it.work] == nil {
			works = append(works, it.work)
		}
		byWork[it.work] = append(byWork[it.work], it)
	}
	for _, w := range works {
		its := byWork[w]
		small, large := its[0], its[len(its)-1]
		fmt.Fprintf(out, "%s: peak RSS %s at %d rows (goal < %d MiB: %s)", w, peakmem.MiB(large.simM.PeakRSS), large.rows,
			goalPeakMiB, verdict(large.simM.PeakRSS < goalPeakMiB<<20))
		if len(its) > 1 { // growth needs two sizes
			growth := float64(large.simM.PeakRSS) / float64(small.simM.PeakRSS)
			fmt.Fprintf(out, ", %.2fx that at %d rows (goal <= %.1fx: %s)", growth, small.rows, goalPeakGrowth, verdict(growth <= goalPeakGrowth))
		}
		fmt.Fprintln(out)
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func runChild(self, phase, path, profileDir string) (measurement, error) {
	var m measurement
	cmd := exec.Command(self, "-phase", phase, "-file", path, "-cpuprofile", profileDir)
	cmd.Stderr = os.Stderr
	outBytes, err := cmd.Output()
	if err != nil {
		return m, fmt.Errorf("phase %s: %w", phase, err)
	}
	if err := json.Unmarshal(outBytes, &m); err != nil {
		return m, fmt.Errorf("phase %s: reading its result: %w", phase, err)
	}
	return m, nil
}

// writeManifest writes n valid rows of layout l and returns the file size.
func writeManifest(path string, l layout, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := csv.NewWriter(bw)
	if err := w.Write(l.header); err != nil {
		f.Close()
		return 0, err
	}
	for i := range n {
		if err := w.Write(l.record(i)); err != nil {
			f.Close()
			return 0, err
		}
	}
	w.Flush()
	if err := errors.Join(w.Error(), bw.Flush()); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return st.Size(), f.Close()
}

func child(phase, path, profileDir string, out io.Writer) error {
	if profileDir != "" {
		name := filepath.Join(profileDir, fmt.Sprintf("%s-%s.pprof", phase, strings.TrimSuffix(filepath.Base(path), ".csv")))
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	sampler := peakmem.StartHeapSampler(5*time.Millisecond, nil)
	var rows int
	var elapsed time.Duration
	var err error
	switch phase {
	case phaseRead:
		rows, elapsed, err = bareRead(path)
	case phaseValidate:
		rows, elapsed, err = validate(path)
	case phaseInsertFloor:
		rows, elapsed, err = insertFloor(path)
	case phaseLoad:
		rows, elapsed, err = load(path)
	default:
		err = fmt.Errorf("unknown phase %q", phase)
	}
	peakHeap := sampler.Stop()
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(measurement{
		Rows: rows, Seconds: elapsed.Seconds(), PeakHeap: peakHeap, PeakRSS: peakmem.RSS(),
	})
}

// csvRecords reads path with encoding/csv as the floors do: a reused
// record, a 64 KiB buffer. fn sees each data record and its row number.
func csvRecords(path string, fn func(row int, rec []string) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 64<<10))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil { // header
		return 0, err
	}
	rows := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows++
		if err := fn(rows+1, rec); err != nil {
			return rows, err
		}
	}
}

// bareRead is the validation floor: the least any CSV manifest reader
// must do.
func bareRead(path string) (int, time.Duration, error) {
	start := time.Now()
	rows, err := csvRecords(path, func(int, []string) error { return nil })
	return rows, time.Since(start), err
}

// validate is the real thing: what `simbulk validate` does per row.
func validate(path string) (int, time.Duration, error) {
	start := time.Now()
	r, err := ingest.Open(path, ingest.OpenOptions{})
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	var first *ingest.Problem
	problems := 0
	sum, header, err := ingest.Scan(r, ingest.ValidateOptions{}, func(_ ingest.Row, ps []ingest.Problem) error {
		if len(ps) > 0 && first == nil {
			first = &ps[0]
		}
		problems += len(ps)
		return nil
	})
	took := time.Since(start)
	if err != nil {
		return sum.Rows, took, err
	}
	if len(header) > 0 {
		first, problems = &header[0], problems+len(header)
	}
	if problems > 0 {
		// Invalid rows take other paths; the benchmark is of valid data.
		return sum.Rows, took, fmt.Errorf("generated manifest has %d problems, first: %s", problems, first)
	}
	return sum.Rows, took, nil
}

// insertFloor is the load floor: every record into an equivalent table
// with one prepared statement, 10,000 rows a transaction.
func insertFloor(path string) (int, time.Duration, error) {
	const batch = 10000
	name := filepath.Join(filepath.Dir(path), "floor-"+strconv.Itoa(os.Getpid())+".db")
	db, err := sql.Open("sqlite3", "file:"+name+"?_journal_mode=WAL&_synchronous=NORMAL")
	if err != nil {
		return 0, 0, err
	}
	defer removeDB(name, db.Close)
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE rows (run_id TEXT NOT NULL, row INTEGER NOT NULL, provider TEXT NOT NULL,
		state TEXT NOT NULL, eid TEXT NOT NULL, iccid TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (run_id, row)) WITHOUT ROWID`); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	var tx *sql.Tx
	var ins *sql.Stmt
	commit := func() error {
		if tx == nil {
			return nil
		}
		err := errors.Join(ins.Close(), tx.Commit())
		tx = nil
		return err
	}
	// The header names the columns: the floor reads by position, as any
	// loader of a known layout would.
	rows, err := csvRecords(path, func(row int, rec []string) error {
		if tx == nil {
			var err error
			if tx, err = db.Begin(); err != nil {
				return err
			}
			if ins, err = tx.Prepare("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?)"); err != nil {
				return err
			}
		}
		if _, err := ins.Exec("run-1", row, rec[0], "pending", rec[1], rec[2], strings.Join(rec, ",")); err != nil {
			return err
		}
		if (row-1)%batch == 0 {
			return commit()
		}
		return nil
	})
	if err == nil {
		err = commit()
	}
	return rows, time.Since(start), err
}

// load is simbulk's: pipeline.Load of the manifest into a fresh
// checkpoint, timed as the "manifest loaded" log line times it.
func load(path string) (int, time.Duration, error) {
	ctx := context.Background()
	db := filepath.Join(filepath.Dir(path), "load-"+strconv.Itoa(os.Getpid())+".db")
	cp, err := sqlite.Open(db)
	if err != nil {
		return 0, 0, err
	}
	defer removeDB(db, cp.Close)
	run, err := cp.CreateRun(ctx, "bench", path, narrow.header)
	if err != nil {
		return 0, 0, err
	}
	r, err := ingest.Open(path, ingest.OpenOptions{})
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	start := time.Now()
	sum, header, err := pipeline.Load(ctx, cp, run, r, ingest.ValidateOptions{})
	took := time.Since(start)
	if err != nil {
		return sum.Rows, took, err
	}
	if len(header) > 0 || sum.Invalid > 0 {
		return sum.Rows, took, fmt.Errorf("generated manifest has %d invalid rows and %d header problems", sum.Invalid, len(header))
	}
	return sum.Rows, took, nil
}

// removeDB closes a checkpoint and removes its files: a million-row one
// takes hundreds of MiB, once per run.
func removeDB(path string, close func() error) {
	_ = close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}

// engineRow is the engine against the bare loop at one latency, as the
// benchrollout binary measures it.
type engineRow struct {
	work           string
	rows           int
	floor, simbulk float64
	goal           float64
}

// runEngine runs benchrollout's overhead benchmark at 1 ms and 20 ms
// latency, the engine at the bare loop's requests in flight, and reads
// the medians from its "table:" line.
func runEngine(bin string, runs int) ([]engineRow, error) {
	var rows []engineRow
	for _, l := range []struct {
		latency string
		goal    float64
	}{{"1ms", 1.3}, {"20ms", 1.05}} {
		fmt.Fprintf(os.Stderr, "engine at %s latency\n", l.latency)
		cmd := exec.Command(bin, "-only", "overhead", "-latency", l.latency, "-repeat", strconv.Itoa(runs))
		cmd.Stderr = os.Stderr
		outBytes, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("engine at %s: %w", l.latency, err)
		}
		e := engineRow{work: "engine " + l.latency + ", equal in flight", goal: l.goal}
		found := false
		for _, line := range strings.Split(string(outBytes), "\n") {
			if _, err := fmt.Sscanf(line, "table: rows=%d bare=%g half=%g", &e.rows, &e.floor, &e.simbulk); err == nil {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("engine at %s: no table line in benchrollout's output", l.latency)
		}
		rows = append(rows, e)
	}
	return rows, nil
}
