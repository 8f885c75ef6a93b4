package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/samples"
	"github.com/simbulk/simbulk/samples/peakmem"
)

// resumeCost is one measurement of a resume.
type resumeCost struct {
	open  time.Duration // sqlite.Open
	setup time.Duration // finding the run and its providers, as `simbulk resume` does
	first time.Duration // Engine.Run start to the first provisioning request
}

func (c resumeCost) total() time.Duration { return c.open + c.setup + c.first }

// benchResume builds two checkpoints, each with resume-pending rows left
// pending at the end of the run and every other row succeeded, and times
// how long a resume takes to send its first provisioning request.
func benchResume(o options) (string, error) {
	var med [2]resumeCost
	for k, n := range o.resumeRows {
		path := filepath.Join(o.dir, fmt.Sprintf("resume-%d.db", n))
		start := time.Now()
		runID, err := buildResumeCheckpoint(path, n, o.resumePending)
		if err != nil {
			return "", fmt.Errorf("build %d-row checkpoint: %w", n, err)
		}
		st, _ := os.Stat(path)
		fmt.Fprintf(os.Stderr, "  built %d rows (%d pending) in %s, %s\n", n, o.resumePending, time.Since(start).Round(time.Millisecond), peakmem.MiB(uint64(st.Size())))
		var costs []resumeCost
		for trial := range o.trials {
			// Each trial resumes a fresh copy: a resume changes the rows.
			trialPath := filepath.Join(o.dir, fmt.Sprintf("resume-%d-trial.db", n))
			if err := copyFile(path, trialPath); err != nil {
				return "", err
			}
			c, err := measureResume(trialPath, runID, fmt.Sprintf("resume-%d-%d", n, trial), o.profile)
			os.Remove(trialPath)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(os.Stderr, "  %d rows: open %s, run and providers %s, first request after %s\n", n, ms(c.open), ms(c.setup), ms(c.first))
			costs = append(costs, c)
		}
		slices.SortFunc(costs, func(a, b resumeCost) int { return int(a.total() - b.total()) })
		med[k] = costs[len(costs)/2]
	}
	fmt.Printf("resume: time to the first provisioning request with %d rows pending (median of %d)\n", o.resumePending, o.trials)
	for k, n := range o.resumeRows {
		c := med[k]
		fmt.Printf("  %8d rows: sqlite.Open %9s + run and open providers %9s + Engine.Run to first request %9s = %9s\n",
			n, ms(c.open), ms(c.setup), ms(c.first), ms(c.total()))
	}
	ratio := med[1].total().Seconds() / med[0].total().Seconds()
	runRatio := med[1].first.Seconds() / med[0].first.Seconds()
	return fmt.Sprintf("resume: %d rows take %.2fx the time of %d rows from sqlite.Open (%.2fx from Engine.Run) to the first request (goal <= %.0fx: %s)",
		o.resumeRows[1], ratio, o.resumeRows[0], runRatio, goalResumeRatio, verdict(ratio <= goalResumeRatio)), nil
}

// buildResumeCheckpoint writes a run of n mixed-provider rows, the last
// pending of them pending and the rest succeeded, as a run interrupted
// near its end would be.
func buildResumeCheckpoint(path string, n, pending int) (string, error) {
	ctx := context.Background()
	os.Remove(path)
	cp, err := sqlite.Open(path)
	if err != nil {
		return "", err
	}
	run, err := cp.CreateRun(ctx, "resume", "resume.csv", samples.Columns)
	if err != nil {
		cp.Close()
		return "", err
	}
	err = addRows(ctx, cp, n, func(i int) pipeline.RowRecord {
		d := samples.NewDevice(samples.Providers[i%len(samples.Providers)], i/len(samples.Providers)+1)
		s := pipeline.Succeeded
		if i >= n-pending {
			s = pipeline.Pending
		}
		return rowOf(run.ID, i+2, d, s)
	})
	if err == nil {
		err = cp.MarkLoaded(ctx, run.ID)
	}
	if err == nil {
		err = cp.SetRunState(ctx, run.ID, pipeline.RunInterrupted)
	}
	if cerr := cp.Close(); err == nil {
		err = cerr
	}
	return run.ID, err
}

// measureResume resumes the run as `simbulk resume` would and stops it at
// the first provisioning request the simulators see.
func measureResume(path, runID, phase, profileDir string) (resumeCost, error) {
	var c resumeCost
	sims := newSimulators(simkit.Faults{})
	base, stop, err := sims.serve()
	if err != nil {
		return c, err
	}
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopProfile, err := profile(profileDir, phase)
	if err != nil {
		return c, err
	}
	defer stopProfile()

	t0 := time.Now()
	cp, err := sqlite.Open(path)
	if err != nil {
		return c, err
	}
	defer cp.Close()
	c.open = time.Since(t0)
	t1 := time.Now()
	run, err := cp.Run(ctx, runID)
	if err != nil {
		return c, err
	}
	used, err := cp.OpenProviders(ctx, run.ID)
	if err != nil {
		return c, err
	}
	c.setup = time.Since(t1)
	ls, err := lanes(base, laneSettings{concurrency: 64, poll: 200 * time.Millisecond}, used...)
	if err != nil {
		return c, err
	}
	e := &pipeline.Engine{Checkpoint: cp, Lanes: ls, Grace: 5 * time.Second}
	done := make(chan error, 1)
	t2 := time.Now()
	go func() {
		_, err := e.Run(ctx, run)
		done <- err
	}()
	select {
	case <-sims.first:
		c.first = sims.firstAt.Sub(t2)
	case err := <-done:
		return c, fmt.Errorf("run ended before sending anything: %v", err)
	case <-time.After(10 * time.Minute):
		return c, fmt.Errorf("no provisioning request within 10 minutes")
	}
	cancel()
	if err := <-done; err != nil {
		return c, err
	}
	return c, nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
