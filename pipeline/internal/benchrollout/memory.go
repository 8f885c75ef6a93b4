package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/samples"
	"github.com/simbulk/simbulk/samples/peakmem"
)

// memoryResult is what a child reports of one whole rollout.
type memoryResult struct {
	Rows        int     `json:"rows"`
	LoadSeconds float64 `json:"load_seconds"`
	RunSeconds  float64 `json:"run_seconds"`
	PeakHeap    uint64  `json:"peak_heap"` // live heap objects, sampled
	LoadHeap    uint64  `json:"load_heap"` // of which while loading the manifest
	LoadRSS     uint64  `json:"load_rss"`  // peak RSS by the end of loading
	PeakRSS     uint64  `json:"peak_rss"`  // kernel's maximum resident set size
	Succeeded   int     `json:"succeeded"`
}

// benchMemory runs a whole rollout of each manifest size in a child
// process of its own, so the peak resident set size the kernel reports is
// that rollout's alone. The simulators run here, in the parent: the
// records they keep per identifier are not the pipeline's memory.
func benchMemory(o options) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	var res [2]memoryResult
	for k, n := range o.memoryRows {
		manifest := filepath.Join(o.dir, fmt.Sprintf("memory-%d.csv", n))
		if err := writeManifest(manifest, n); err != nil {
			return "", fmt.Errorf("write manifest: %w", err)
		}
		sims := newSimulators(simkit.Faults{})
		base, stop, err := sims.serve()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(os.Stderr, "  rollout of %d rows in a child process\n", n)
		db := filepath.Join(o.dir, fmt.Sprintf("memory-%d.db", n))
		cmd := exec.Command(self, "-phase", "memory", "-file", manifest, "-url", base, "-db", db, "-cpuprofile", o.profile,
			"-concurrency", strconv.Itoa(o.concurrency), "-poll", o.pollInterval.String())
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		stop()
		os.Remove(db)
		if err != nil {
			return "", fmt.Errorf("rollout of %d rows: %w", n, err)
		}
		if err := json.Unmarshal(out, &res[k]); err != nil {
			return "", fmt.Errorf("rollout of %d rows: reading its result: %w", n, err)
		}
		if res[k].Rows != n || res[k].Succeeded != n {
			return "", fmt.Errorf("rollout of %d rows: %d rows loaded, %d succeeded", n, res[k].Rows, res[k].Succeeded)
		}
	}
	fmt.Printf("memory: whole rollouts (load the manifest, run every row; concurrency %d per provider, no latency)\n", o.concurrency)
	for _, r := range res {
		fmt.Printf("  %8d rows: load %7.1f s, run %7.1f s (%6.0f rows/s), peak heap %10s (loading %10s), peak RSS %10s (loading %10s)\n",
			r.Rows, r.LoadSeconds, r.RunSeconds, float64(r.Rows)/r.RunSeconds, peakmem.MiB(r.PeakHeap), peakmem.MiB(r.LoadHeap), peakmem.MiB(r.PeakRSS), peakmem.MiB(r.LoadRSS))
	}
	ratio := float64(res[1].PeakRSS) / float64(res[0].PeakRSS)
	heapRatio := float64(res[1].PeakHeap) / float64(res[0].PeakHeap)
	return fmt.Sprintf("memory: %d rows peak at %.2fx the RSS of %d rows (heap %.2fx) (goal <= %.1fx: %s)",
		res[1].Rows, ratio, res[0].Rows, heapRatio, goalMemoryRatio, verdict(ratio <= goalMemoryRatio)), nil
}

// writeManifest writes n valid rows, the three providers interleaved.
func writeManifest(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := csv.NewWriter(bw)
	_ = w.Write(samples.Columns)
	for i := range n {
		_ = w.Write(samples.NewDevice(samples.Providers[i%len(samples.Providers)], i/len(samples.Providers)+1).Record())
	}
	w.Flush()
	return errors.Join(w.Error(), bw.Flush(), f.Close())
}

// memoryChild is one whole rollout: a fresh checkpoint, the manifest
// loaded into it, every row run against the simulators at base.
func memoryChild(manifest, base, db, profileDir string, concurrency int, poll time.Duration, out io.Writer) error {
	ctx := context.Background()
	sampler := peakmem.StartHeapSampler(5*time.Millisecond, nil)
	name := strings.TrimSuffix(filepath.Base(manifest), ".csv")
	stopProfile, err := profile(profileDir, name+"-load")
	if err != nil {
		return err
	}

	start := time.Now()
	cp, err := sqlite.Open(db)
	if err != nil {
		return err
	}
	defer cp.Close()
	r, err := ingest.Open(manifest, ingest.OpenOptions{})
	if err != nil {
		return err
	}
	run, err := cp.CreateRun(ctx, "memory", manifest, r.Header().Names)
	if err != nil {
		return err
	}
	sum, _, err := pipeline.Load(ctx, cp, run, r, ingest.ValidateOptions{})
	r.Close()
	if err != nil {
		return err
	}
	if sum.Invalid > 0 {
		return fmt.Errorf("%d invalid rows in the generated manifest", sum.Invalid)
	}
	if err := cp.MarkLoaded(ctx, run.ID); err != nil {
		return err
	}
	loaded := time.Since(start)
	loadHeap := sampler.Stop()
	loadRSS := peakmem.RSS()
	stopProfile()
	var lastHeapProfile time.Time
	sampler = peakmem.StartHeapSampler(5*time.Millisecond, func() {
		// A heap profile at the live heap's peaks (at most one a second)
		// shows what the run holds when it holds the most.
		if profileDir == "" || time.Since(lastHeapProfile) < time.Second {
			return
		}
		lastHeapProfile = time.Now()
		if f, err := os.Create(filepath.Join(profileDir, name+"-heap-peak.pprof")); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	})
	if stopProfile, err = profile(profileDir, name+"-run"); err != nil {
		return err
	}
	defer stopProfile()

	ls, err := lanes(base, laneSettings{concurrency: concurrency, poll: poll}, samples.Providers...)
	if err != nil {
		return err
	}
	e := &pipeline.Engine{Checkpoint: cp, Lanes: ls}
	started := time.Now()
	state, err := e.Run(ctx, run)
	ran := time.Since(started)
	if err != nil {
		return err
	}
	counts, err := cp.Counts(ctx, run.ID)
	if err != nil {
		return err
	}
	if state != pipeline.RunCompleted {
		return fmt.Errorf("run %s with %v", state, counts)
	}
	runHeap := sampler.Stop()
	fmt.Fprintf(os.Stderr, "  run: live heap at most %s\n", peakmem.MiB(sampler.PeakLive()))
	if profileDir != "" {
		// What the run still holds at its end: anything here grows with it.
		f, err := os.Create(filepath.Join(profileDir, name+"-heap.pprof"))
		if err != nil {
			return err
		}
		runtime.GC()
		err = errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
		if err != nil {
			return err
		}
	}
	return json.NewEncoder(out).Encode(memoryResult{Rows: sum.Rows, LoadSeconds: loaded.Seconds(), RunSeconds: ran.Seconds(),
		PeakHeap: max(loadHeap, runHeap), LoadHeap: loadHeap, LoadRSS: loadRSS, PeakRSS: peakmem.RSS(), Succeeded: counts[pipeline.Succeeded]})
}
