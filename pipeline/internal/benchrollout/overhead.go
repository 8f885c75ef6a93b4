package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/samples"
)

// overheadResult is one side of the overhead benchmark.
type overheadResult struct {
	took     time.Duration
	peak     int64 // requests in flight at the simulator at once, at most
	requests int
}

// benchOverhead provisions the same Asavie devices twice against a
// simulator answering after latency: once with a bare errgroup loop
// (Submit, then Check until done, no checkpoint), once through the Engine.
func benchOverhead(o options) (string, error) {
	devices := make([]samples.Device, o.overheadRows)
	for i := range devices {
		devices[i] = samples.NewDevice(asavie.Name, i+1)
	}
	// The engine checks accepted rows with a pool of its own beside the
	// senders, so a lane of concurrency N may have 2N requests in flight.
	// The half-concurrency run shows the cost at the bare loop's N.
	var bares, pipes, halves []overheadResult
	for i := range o.repeat {
		b, err := bareLoop(o, devices)
		if err != nil {
			return "", fmt.Errorf("bare loop: %w", err)
		}
		p, err := pipelineRun(o, devices, o.concurrency, fmt.Sprintf("%d", i))
		if err != nil {
			return "", fmt.Errorf("pipeline: %w", err)
		}
		h, err := pipelineRun(o, devices, max(1, o.concurrency/2), fmt.Sprintf("half-%d", i))
		if err != nil {
			return "", fmt.Errorf("pipeline: %w", err)
		}
		fmt.Fprintf(os.Stderr, "  bare %s, pipeline %s, pipeline at half concurrency %s\n",
			b.took.Round(time.Millisecond), p.took.Round(time.Millisecond), h.took.Round(time.Millisecond))
		bares, pipes, halves = append(bares, b), append(pipes, p), append(halves, h)
	}
	bare, pipe, half := medianRun(bares), medianRun(pipes), medianRun(halves)
	ratio := pipe.took.Seconds() / bare.took.Seconds()
	line := func(name string, r overheadResult) {
		fmt.Printf("  %-36s %8.2f s  %7.0f rows/s  %6d requests  peak %3d in flight\n",
			name, r.took.Seconds(), float64(o.overheadRows)/r.took.Seconds(), r.requests, r.peak)
	}
	fmt.Printf("overhead: %d Asavie rows, simulator latency %s, concurrency %d, poll %s\n", o.overheadRows, o.latency, o.concurrency, o.pollInterval)
	line(fmt.Sprintf("bare errgroup loop (limit %d)", o.concurrency), bare)
	line(fmt.Sprintf("Engine.Run (lane concurrency %d)", o.concurrency), pipe)
	line(fmt.Sprintf("Engine.Run (lane concurrency %d)", max(1, o.concurrency/2)), half)
	// For benchmanifest's table, which runs this benchmark at two latencies.
	fmt.Printf("table: rows=%d bare=%g half=%g\n", o.overheadRows, bare.took.Seconds(), half.took.Seconds())
	return fmt.Sprintf("overhead: pipeline takes %.2fx the bare loop's time (goal <= %.2fx: %s); %.2fx at half the lane concurrency (as many requests in flight as the bare loop)",
		ratio, goalOverhead, verdict(ratio <= goalOverhead), half.took.Seconds()/bare.took.Seconds()), nil
}

// medianRun is the run of median time (the upper one of an even count).
func medianRun(runs []overheadResult) overheadResult {
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b overheadResult) int { return cmp.Compare(a.took, b.took) })
	return runs[len(runs)/2]
}

func totalRequests(s simkit.Stats) int {
	n := 0
	for _, v := range s.Requests {
		n += v
	}
	return n
}

func bareLoop(o options, devices []samples.Device) (overheadResult, error) {
	sims := newSimulators(simkit.Faults{Latency: o.latency})
	base, stop, err := sims.serve()
	if err != nil {
		return overheadResult{}, err
	}
	defer stop()
	client, err := newAsavieClient(base)
	if err != nil {
		return overheadResult{}, err
	}
	orders := make([]providers.Order, len(devices))
	for i, d := range devices {
		orders[i] = providers.Order{Key: fmt.Sprintf("bare/%d", i+2), EID: d.EID, ICCID: d.ICCID, CLI: cliOf(d), IMEI: d.IMEI, Fields: fieldsOf(d)}
	}
	ctx := context.Background()
	stopProfile, err := profile(o.profile, "overhead-bare")
	if err != nil {
		return overheadResult{}, err
	}
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(o.concurrency)
	var failed atomic.Int64
	for _, order := range orders {
		g.Go(func() error {
			out := client.Submit(ctx, []providers.Order{order})[0]
			for tries := 0; out.Status == providers.Accepted && tries < 1000; tries++ {
				out = client.Check(ctx, order, out.Handle)
			}
			if out.Status != providers.Succeeded {
				failed.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait()
	took := time.Since(start)
	stopProfile()
	if n := failed.Load(); n > 0 {
		return overheadResult{}, fmt.Errorf("%d of %d orders did not succeed", n, len(orders))
	}
	return overheadResult{took: took, peak: sims.peak.Load(), requests: totalRequests(sims.Asavie.Kit().Stats())}, nil
}

func pipelineRun(o options, devices []samples.Device, concurrency int, name string) (overheadResult, error) {
	ctx := context.Background()
	cp, err := sqlite.Open(filepath.Join(o.dir, "overhead-"+name+".db"))
	if err != nil {
		return overheadResult{}, err
	}
	defer cp.Close()
	run, err := cp.CreateRun(ctx, "overhead", "overhead.csv", samples.Columns)
	if err != nil {
		return overheadResult{}, err
	}
	if err := addRows(ctx, cp, len(devices), func(i int) pipeline.RowRecord {
		return rowOf(run.ID, i+2, devices[i], pipeline.Pending)
	}); err != nil {
		return overheadResult{}, err
	}
	if err := cp.MarkLoaded(ctx, run.ID); err != nil {
		return overheadResult{}, err
	}

	sims := newSimulators(simkit.Faults{Latency: o.latency})
	base, stop, err := sims.serve()
	if err != nil {
		return overheadResult{}, err
	}
	defer stop()
	ls, err := lanes(base, laneSettings{concurrency: concurrency, poll: o.pollInterval}, asavie.Name)
	if err != nil {
		return overheadResult{}, err
	}
	e := &pipeline.Engine{Checkpoint: cp, Lanes: ls}
	stopProfile, err := profile(o.profile, "overhead-pipeline-"+name)
	if err != nil {
		return overheadResult{}, err
	}
	start := time.Now()
	state, err := e.Run(ctx, run)
	took := time.Since(start)
	stopProfile()
	if err != nil {
		return overheadResult{}, err
	}
	counts, err := cp.Counts(ctx, run.ID)
	if err != nil {
		return overheadResult{}, err
	}
	if state != pipeline.RunCompleted || counts[pipeline.Succeeded] != len(devices) {
		return overheadResult{}, fmt.Errorf("run %s with %v, want every row succeeded", state, counts)
	}
	return overheadResult{took: took, peak: sims.peak.Load(), requests: totalRequests(sims.Asavie.Kit().Stats())}, nil
}

// profile starts a CPU profile named after the phase in dir ("" = none)
// and returns its stop.
func profile(dir, phase string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(dir, phase+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
