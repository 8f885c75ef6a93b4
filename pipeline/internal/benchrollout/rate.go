package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/samples"
)

// benchRate runs Asavie rows (a provisioning request and a status poll
// each) through a lane given the very rate the simulator enforces, and
// reads the achieved rate and the 429s off the simulator's counters.
func benchRate(o options) (string, error) {
	ctx := context.Background()
	rows := max(1, o.rateRequests/2)
	cp, err := sqlite.Open(filepath.Join(o.dir, "rate.db"))
	if err != nil {
		return "", err
	}
	defer cp.Close()
	run, err := cp.CreateRun(ctx, "rate", "rate.csv", samples.Columns)
	if err != nil {
		return "", err
	}
	if err := addRows(ctx, cp, rows, func(i int) pipeline.RowRecord {
		return rowOf(run.ID, i+2, samples.NewDevice(asavie.Name, i+1), pipeline.Pending)
	}); err != nil {
		return "", err
	}

	sims := newSimulators(simkit.Faults{Rate: o.rate, Burst: o.rateBurst, Latency: o.latency, RetryAfter: time.Second})
	base, stop, err := sims.serve()
	if err != nil {
		return "", err
	}
	defer stop()
	ls, err := lanes(base, laneSettings{concurrency: 16, rate: o.rate, poll: o.pollInterval}, asavie.Name)
	if err != nil {
		return "", err
	}
	e := &pipeline.Engine{Checkpoint: cp, Lanes: ls}
	start := time.Now()
	state, err := e.Run(ctx, run)
	wall := time.Since(start)
	if err != nil {
		return "", err
	}
	counts, err := cp.Counts(ctx, run.ID)
	if err != nil {
		return "", err
	}
	if state != pipeline.RunCompleted || counts[pipeline.Succeeded] != rows {
		return "", fmt.Errorf("run %s with %v, want every row succeeded", state, counts)
	}
	st := sims.Asavie.Kit().Stats()
	total := totalRequests(st)
	perSec := float64(total) / wall.Seconds()
	spanRate := float64(total) / sims.span().Seconds()
	share429 := float64(st.TooManyRequests) / float64(total)
	fmt.Printf("rate: %d Asavie rows, simulator enforces %g requests/s (burst %d), lane rate %g, latency %s\n", rows, o.rate, o.rateBurst, o.rate, o.latency)
	fmt.Printf("  %d requests (%v) in %.2f s: %.1f requests/s over the run, %.1f from first to last request; %d answered 429 (%.2f%%)\n",
		total, st.Requests, wall.Seconds(), perSec, spanRate, st.TooManyRequests, 100*share429)
	ok := perSec >= goalRateShare*o.rate && share429 < goal429Share
	return fmt.Sprintf("rate: %.1f%% of the enforced limit achieved, %.2f%% answered 429 (goal >= %.0f%% and < %.1f%%: %s)",
		100*perSec/o.rate, 100*share429, 100*goalRateShare, 100*goal429Share, verdict(ok)), nil
}
