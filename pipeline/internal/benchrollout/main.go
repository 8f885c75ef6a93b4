// Command benchrollout measures the rollout engine against the provider
// simulators and prints figures; it asserts nothing, because timings
// depend on the machine. Four benchmarks, each read against a goal:
//
//	overhead  N Asavie rows through the Engine (checkpoint, intents, checks)
//	          against a bare errgroup loop making the same calls with the
//	          same client and no checkpoint; goal: pipeline <= 1.15x bare.
//	rate      a lane limited to the rate the simulator enforces: requests/s
//	          achieved >= 99% of the limit with < 0.1% answered 429.
//	resume    time from opening a checkpoint to the first provisioning
//	          request, for a small and a large run with the same number of
//	          rows left pending; goal: large <= 2x small.
//	memory    peak memory of a whole rollout (load the manifest, run every
//	          row) of a small and a large manifest, each in a child process
//	          of its own; goal: large <= 1.5x small.
//	workers   one run in PostgreSQL shared by 1 and by 3 workers, without a
//	          rate limit (throughput should grow with workers), and by 3
//	          under the rate the simulator enforces, which they must hold
//	          together. Needs PostgreSQL's server binaries (see pgtest).
//
// `go run ./pipeline/internal/benchrollout` runs all five at full size (the
// million-row parts take minutes); -quick runs them small, -only picks
// some, and the size flags set each one's sizes.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Goals the figures are read against.
const (
	goalOverhead    = 1.15
	goalRateShare   = 0.99
	goal429Share    = 0.001
	goalResumeRatio = 2.0
	goalMemoryRatio = 1.5
)

type options struct {
	only    map[string]bool
	dir     string
	profile string

	overheadRows int
	concurrency  int
	latency      time.Duration
	pollInterval time.Duration
	repeat       int

	rate         float64
	rateBurst    int
	rateRequests int

	resumeRows    []int
	resumePending int
	trials        int

	memoryRows []int

	workersRows int
}

func main() {
	var o options
	only := flag.String("only", "overhead,rate,resume,memory,workers", "comma-separated benchmarks to run: overhead, rate, resume, memory, workers")
	quick := flag.Bool("quick", false, "small sizes throughout (a minute or two), for a first look")
	flag.StringVar(&o.dir, "dir", "", "directory for checkpoints and manifests (default: a temporary one, removed afterwards)")
	flag.StringVar(&o.profile, "cpuprofile", "", "write CPU profiles of the measured phases to `DIR` (for go tool pprof)")
	flag.IntVar(&o.overheadRows, "overhead-rows", 20000, "overhead: Asavie rows")
	flag.IntVar(&o.concurrency, "concurrency", 64, "overhead: workers (lane concurrency and errgroup limit)")
	flag.DurationVar(&o.latency, "latency", 20*time.Millisecond, "overhead and rate: simulator latency per answer")
	flag.DurationVar(&o.pollInterval, "poll", 100*time.Millisecond, "poll interval of the engine's lanes")
	flag.IntVar(&o.repeat, "repeat", 1, "overhead: measure bare and pipeline this many times each, alternating; the median of each counts")
	flag.Float64Var(&o.rate, "rate", 100, "rate: requests per second the simulator enforces and the lane is given")
	flag.IntVar(&o.rateBurst, "rate-burst", 10, "rate: burst of the simulator's enforced limit")
	flag.IntVar(&o.rateRequests, "rate-requests", 3000, "rate: about how many requests the run makes (two per row)")
	resumeRows := flag.String("resume-rows", "10000,1000000", "resume: checkpoint sizes in rows, small first")
	flag.IntVar(&o.resumePending, "resume-pending", 1000, "resume: rows left pending in each checkpoint")
	flag.IntVar(&o.trials, "trials", 3, "resume: measurements per size; the median counts")
	memoryRows := flag.String("memory-rows", "100000,1000000", "memory: manifest sizes in rows, small first")
	flag.IntVar(&o.workersRows, "workers-rows", 100000, "workers: mixed rows of the unlimited runs")
	phase := flag.String("phase", "", "internal: run one memory phase (see -file, -url, -db) and print its measurements as JSON")
	file := flag.String("file", "", "internal: the manifest of -phase")
	base := flag.String("url", "", "internal: the simulators' base URL for -phase")
	db := flag.String("db", "", "internal: the checkpoint of -phase")
	flag.Parse()

	if *phase != "" {
		if err := memoryChild(*file, *base, *db, o.profile, o.concurrency, o.pollInterval, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "benchrollout:", err)
			os.Exit(1)
		}
		return
	}
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["overhead-rows"] {
			o.overheadRows = 5000
		}
		if !set["rate-requests"] {
			o.rateRequests = 1000
		}
		if !set["resume-rows"] {
			*resumeRows = "10000,100000"
		}
		if !set["memory-rows"] {
			*memoryRows = "10000,100000"
		}
		if !set["workers-rows"] {
			o.workersRows = 10000
		}
	}
	var err error
	if o.resumeRows, err = sizes("-resume-rows", *resumeRows); err == nil {
		o.memoryRows, err = sizes("-memory-rows", *memoryRows)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrollout:", err)
		os.Exit(2)
	}
	o.only = map[string]bool{}
	for _, name := range strings.Split(*only, ",") {
		switch name = strings.TrimSpace(name); name {
		case "overhead", "rate", "resume", "memory", "workers":
			o.only[name] = true
		case "":
		default:
			fmt.Fprintf(os.Stderr, "benchrollout: -only: unknown benchmark %q\n", name)
			os.Exit(2)
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchrollout:", err)
		os.Exit(1)
	}
}

func sizes(flagName, list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive row count", flagName, s)
		}
		out = append(out, n)
	}
	if len(out) != 2 {
		return nil, fmt.Errorf("%s: want two sizes, small and large", flagName)
	}
	return out, nil
}

func run(o options) error {
	if o.dir == "" {
		tmp, err := os.MkdirTemp("", "simbulk-benchrollout-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		o.dir = tmp
	}
	out := os.Stdout
	var verdicts []string
	for _, b := range []struct {
		name string
		fn   func(options) (string, error)
	}{
		{"overhead", benchOverhead},
		{"rate", benchRate},
		{"resume", benchResume},
		{"memory", benchMemory},
		{"workers", benchWorkers},
	} {
		if !o.only[b.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", b.name)
		v, err := b.fn(o)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		verdicts = append(verdicts, v)
	}
	fmt.Fprintln(out)
	for _, v := range verdicts {
		fmt.Fprintln(out, v)
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
