// Command benchmanifest measures how fast simbulk validates a large
// manifest compared with merely reading the same file with encoding/csv,
// and how much memory each takes. `make bench` runs it.
//
// For each size it writes a manifest of valid mixed-provider rows into a
// temporary directory, then runs each phase in a child process of its own
// (this program again, with -phase), so that the peak resident set size
// the kernel reports belongs to that phase alone. The children also sample
// the Go heap while they work. Two sizes show whether memory stays flat as
// the row count grows: it should, apart from the duplicate index.
//
// Timings on a shared machine vary from run to run, so each phase runs
// -runs times, the two phases taking turns, and the table shows the median
// time (and CPU time: validation reads and checks on two goroutines, so it
// suffers more than the bare read when other work takes a core) and the
// largest peaks.
package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/simbulk/simbulk/ingest"
	// The shipped providers' manifest rules, which the validation measured
	// here applies.
	_ "github.com/simbulk/simbulk/providers/all"
	"github.com/simbulk/simbulk/samples"
	"github.com/simbulk/simbulk/samples/peakmem"
)

// Goals the table is read against; nothing fails when they are missed,
// because timings depend on the machine.
const (
	goalRatio   = 2.0
	goalPeakMiB = 200
)

func main() {
	rows := flag.String("rows", "100000,1000000", "comma-separated manifest sizes in rows")
	dir := flag.String("dir", "", "directory for the generated manifests (default: a temporary one, removed afterwards)")
	phase := flag.String("phase", "", "internal: run one phase on -file and print its measurements as JSON")
	file := flag.String("file", "", "internal: the manifest for -phase")
	profile := flag.String("cpuprofile", "", "write a CPU profile of each phase to `DIR` (for go tool pprof; the last run's)")
	runs := flag.Int("runs", 3, "run each phase this many times and report the median time")
	flag.Parse()

	var err error
	switch {
	case *phase != "":
		err = child(*phase, *file, *profile, os.Stdout)
	case *runs < 1:
		err = fmt.Errorf("-runs %d: need at least one run", *runs)
	default:
		err = parent(*rows, *dir, *profile, *runs, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmanifest:", err)
		os.Exit(1)
	}
}

// measurement is what a child reports for one phase.
type measurement struct {
	Rows     int     `json:"rows"`
	Seconds  float64 `json:"seconds"`
	PeakHeap uint64  `json:"peak_heap"` // live heap objects, sampled
	PeakRSS  uint64  `json:"peak_rss"`  // kernel's maximum resident set size
	CPU      float64 `json:"-"`         // user and system seconds, from the parent's view of the child
}

// summarise combines the runs of one phase: median times, largest peaks.
func summarise(runs []measurement) measurement {
	median := func(f func(measurement) float64) float64 {
		v := make([]float64, len(runs))
		for i, m := range runs {
			v[i] = f(m)
		}
		slices.Sort(v)
		if n := len(v); n%2 == 0 {
			return (v[n/2-1] + v[n/2]) / 2
		}
		return v[len(v)/2]
	}
	s := measurement{
		Rows:    runs[0].Rows,
		Seconds: median(func(m measurement) float64 { return m.Seconds }),
		CPU:     median(func(m measurement) float64 { return m.CPU }),
	}
	for _, m := range runs {
		s.PeakHeap = max(s.PeakHeap, m.PeakHeap)
		s.PeakRSS = max(s.PeakRSS, m.PeakRSS)
	}
	return s
}

const (
	phaseRead     = "read"
	phaseValidate = "validate"
)

var phaseLabel = map[string]string{
	phaseRead:     "encoding/csv read",
	phaseValidate: "ingest Open+Scan",
}

func parent(sizeList, dir, profileDir string, runs int, out io.Writer) error {
	var sizes []int
	for _, s := range strings.Split(sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-rows: %q is not a positive row count", s)
		}
		sizes = append(sizes, n)
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "simbulk-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	type result struct {
		size  int
		bytes int64
		read  measurement
		check measurement
	}
	var results []result
	for _, n := range sizes {
		path := filepath.Join(dir, fmt.Sprintf("mixed-%d.csv", n))
		fmt.Fprintf(os.Stderr, "writing %d rows to %s\n", n, path)
		size, err := writeManifest(path, n)
		if err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
		r := result{size: n, bytes: size}
		var reads, checks []measurement
		for run := 1; run <= runs; run++ {
			for _, ph := range []string{phaseRead, phaseValidate} {
				fmt.Fprintf(os.Stderr, "%s: %d rows, run %d of %d\n", phaseLabel[ph], n, run, runs)
				m, err := runChild(self, ph, path, profileDir)
				if err != nil {
					return err
				}
				if m.Rows != n {
					return fmt.Errorf("%s read %d rows, want %d", ph, m.Rows, n)
				}
				if ph == phaseRead {
					reads = append(reads, m)
				} else {
					checks = append(checks, m)
				}
			}
		}
		r.read, r.check = summarise(reads), summarise(checks)
		results = append(results, r)
	}

	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "rows\tfile\tphase\tseconds\trows/s\tCPU s\tpeak heap\tpeak RSS\t\n")
	for _, r := range results {
		for _, ph := range []string{phaseRead, phaseValidate} {
			m := r.read
			if ph == phaseValidate {
				m = r.check
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%.2f\t%.0f\t%.2f\t%s\t%s\t\n", r.size, peakmem.MiB(uint64(r.bytes)), phaseLabel[ph],
				m.Seconds, float64(m.Rows)/m.Seconds, m.CPU, peakmem.MiB(m.PeakHeap), peakmem.MiB(m.PeakRSS))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nseconds and CPU: median of %d runs; peaks: the largest\n", runs)
	for _, r := range results {
		ratio := r.check.Seconds / r.read.Seconds
		fmt.Fprintf(out, "%d rows: validation takes %.2fx the time of a bare CSV read (goal <= %.0fx: %s); validation peak RSS %s (goal < %d MiB: %s)\n",
			r.size, ratio, goalRatio, verdict(ratio <= goalRatio), peakmem.MiB(r.check.PeakRSS), goalPeakMiB, verdict(r.check.PeakRSS < goalPeakMiB<<20))
	}
	return nil
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
	m.CPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return m, nil
}

// writeManifest writes n valid rows, the three providers interleaved,
// and returns the file size.
func writeManifest(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := csv.NewWriter(bw)
	if err := w.Write(samples.Columns); err != nil {
		f.Close()
		return 0, err
	}
	for i := range n {
		d := samples.NewDevice(samples.Providers[i%len(samples.Providers)], i+1)
		if err := w.Write(d.Record()); err != nil {
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
	start := time.Now()
	var rows int
	var err error
	switch phase {
	case phaseRead:
		rows, err = bareRead(path)
	case phaseValidate:
		rows, err = validate(path)
	default:
		err = fmt.Errorf("unknown phase %q", phase)
	}
	elapsed := time.Since(start)
	peakHeap := sampler.Stop()
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(measurement{
		Rows: rows, Seconds: elapsed.Seconds(), PeakHeap: peakHeap, PeakRSS: peakmem.RSS(),
	})
}

// bareRead is the baseline: the least any CSV manifest reader must do.
func bareRead(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 64<<10))
	r.FieldsPerRecord = -1
	if _, err := r.Read(); err != nil { // header
		return 0, err
	}
	rows := 0
	for {
		_, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows++
	}
}

// validate is the real thing: what `simbulk validate` does per row.
func validate(path string) (int, error) {
	r, err := ingest.Open(path, ingest.OpenOptions{})
	if err != nil {
		return 0, err
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
	if err != nil {
		return sum.Rows, err
	}
	if len(header) > 0 {
		first, problems = &header[0], problems+len(header)
	}
	if problems > 0 {
		// Invalid rows take other paths; the benchmark is of valid data.
		return sum.Rows, fmt.Errorf("generated manifest has %d problems, first: %s", problems, first)
	}
	return sum.Rows, nil
}
