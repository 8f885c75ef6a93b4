package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/postgres"
	"github.com/simbulk/simbulk/pipeline/postgres/pgtest"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/samples"
)

// workersResult is one shared rollout: how long it took and what the
// simulators saw.
type workersResult struct {
	took     time.Duration
	requests int
	tooMany  int
	peak     map[string]int // most requests any one second, by provider
}

// benchWorkers measures several workers on one run in PostgreSQL, each an
// engine with a connection pool of its own, as separate processes would
// be: the same mixed rows through one worker and through three, against
// simulators that answer after latency with no rate limit (throughput
// should grow with workers, the checkpoint permitting), then Asavie rows
// through three workers under the rate the simulator enforces, which the
// three together must hold.
func benchWorkers(o options) (string, error) {
	c, err := pgtest.Start()
	if err != nil {
		return fmt.Sprintf("workers: not measured (%v)", err), nil
	}
	defer c.Stop()
	mixed := func(runID string, i int) pipeline.RowRecord {
		p := samples.Providers[i%len(samples.Providers)]
		return rowOf(runID, i+2, samples.NewDevice(p, i+1), pipeline.Pending)
	}
	free := simkit.Faults{Latency: o.latency}
	ls := laneSettings{concurrency: 8, poll: o.pollInterval}
	one, err := sharedRun(c, 1, o.workersRows, free, ls, mixed, samples.Providers...)
	if err != nil {
		return "", fmt.Errorf("one worker: %w", err)
	}
	three, err := sharedRun(c, 3, o.workersRows, free, ls, mixed, samples.Providers...)
	if err != nil {
		return "", fmt.Errorf("three workers: %w", err)
	}
	asavieRows := func(runID string, i int) pipeline.RowRecord {
		return rowOf(runID, i+2, samples.NewDevice(asavie.Name, i+1), pipeline.Pending)
	}
	limited := simkit.Faults{Rate: o.rate, Burst: o.rateBurst, Latency: o.latency, RetryAfter: time.Second}
	held, err := sharedRun(c, 3, max(1, o.rateRequests/2), limited, laneSettings{concurrency: 16, rate: o.rate, poll: o.pollInterval},
		asavieRows, asavie.Name)
	if err != nil {
		return "", fmt.Errorf("three workers under a rate: %w", err)
	}

	fmt.Printf("workers: %d mixed rows in PostgreSQL, simulator latency %s, no rate limit, lane concurrency %d per worker\n",
		o.workersRows, o.latency, ls.concurrency)
	for _, r := range []struct {
		n int
		r workersResult
	}{{1, one}, {3, three}} {
		fmt.Printf("  %d worker(s) %8.2f s  %7.0f rows/s  %7d requests\n", r.n, r.r.took.Seconds(), float64(o.workersRows)/r.r.took.Seconds(), r.r.requests)
	}
	perSec := float64(held.requests) / held.took.Seconds()
	fmt.Printf("  3 workers, Asavie lane rate %g, simulator enforcing %g (burst %d): %d requests in %.2f s, %.1f/s; most in one second %d; %d answered 429\n",
		o.rate, o.rate, o.rateBurst, held.requests, held.took.Seconds(), perSec, held.peak[asavie.Name], held.tooMany)
	return fmt.Sprintf("workers: 3 workers %.2fx the throughput of 1; under a rate of %g, 3 workers held %.1f/s (at most %d in one second), %d answered 429",
		one.took.Seconds()/three.took.Seconds(), o.rate, perSec, held.peak[asavie.Name], held.tooMany), nil
}

// sharedRun loads rows into a new database on c and runs them to the end
// with the given number of workers at once.
func sharedRun(c *pgtest.Cluster, workers, rows int, f simkit.Faults, ls laneSettings,
	row func(runID string, i int) pipeline.RowRecord, providers ...string) (workersResult, error) {
	ctx := context.Background()
	_, dsn, err := c.CreateDB()
	if err != nil {
		return workersResult{}, err
	}
	cp, err := postgres.Open(ctx, dsn)
	if err != nil {
		return workersResult{}, err
	}
	defer cp.Close()
	run, err := cp.CreateRun(ctx, "workers", "workers.csv", samples.Columns)
	if err != nil {
		return workersResult{}, err
	}
	if err := addRows(ctx, cp, rows, func(i int) pipeline.RowRecord { return row(run.ID, i) }); err != nil {
		return workersResult{}, err
	}
	sims := newSimulators(f)
	base, stop, err := sims.serve()
	if err != nil {
		return workersResult{}, err
	}
	defer stop()
	engines := make([]*pipeline.Engine, workers)
	for i := range engines {
		store, err := postgres.Open(ctx, dsn) // a pool of its own, as another process has
		if err != nil {
			return workersResult{}, err
		}
		defer store.Close()
		lns, err := lanes(base, ls, providers...)
		if err != nil {
			return workersResult{}, err
		}
		engines[i] = &pipeline.Engine{Checkpoint: store, Lanes: lns}
	}
	fmt.Fprintf(os.Stderr, "  %d rows, %d worker(s)\n", rows, workers)
	start := time.Now()
	var g errgroup.Group
	for _, e := range engines {
		g.Go(func() error {
			_, err := e.Run(ctx, run)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return workersResult{}, err
	}
	res := workersResult{took: time.Since(start), peak: map[string]int{}}
	counts, err := cp.Counts(ctx, run.ID)
	if err != nil {
		return res, err
	}
	if counts[pipeline.Succeeded] != rows {
		return res, fmt.Errorf("rows %v, want every one succeeded", counts)
	}
	for _, p := range providers {
		st := sims.Sim(p).Kit().Stats()
		res.requests += totalRequests(st)
		res.tooMany += st.TooManyRequests
		res.peak[p] = st.PeakPerSecond
	}
	return res, nil
}
