package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/simbulk/simbulk/pipeline"
)

// watchProgress shows a run's progress until the returned stop is called:
// a progress bar on stderr when it is a terminal, otherwise one log line
// every few seconds (cron logs want a heartbeat, not a redrawn bar).
func (a *app) watchProgress(ctx context.Context, cp pipeline.Store, runID string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	interactive := isTerminal(a.stderr)
	go func() {
		defer close(done)
		every := 5 * time.Second
		var bar *progressbar.ProgressBar
		if interactive {
			every = 500 * time.Millisecond
		}
		t := time.NewTicker(every)
		defer t.Stop()
		started := time.Now()
		for {
			select {
			case <-ctx.Done():
				if bar != nil {
					_ = bar.Finish()
				}
				return
			case <-t.C:
			}
			c, err := cp.Counts(ctx, runID)
			if err != nil {
				continue
			}
			total := c.Total() - c[pipeline.Invalid] - c[pipeline.Skipped]
			done := c[pipeline.Succeeded] + c[pipeline.Failed]
			if interactive {
				if bar == nil {
					bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(a.stderr),
						progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
						progressbar.OptionSetPredictTime(true), barWidth(a.stderr), progressbar.OptionClearOnFinish())
				}
				bar.Describe(formatFailures(c[pipeline.Failed]))
				_ = bar.Set(done)
				continue
			}
			elapsed := time.Since(started).Seconds()
			a.logger().Info("progress", "run", runID, "done", done, "total", total,
				"succeeded", c[pipeline.Succeeded], "failed", c[pipeline.Failed], "accepted", c[pipeline.Accepted],
				"in_flight", c[pipeline.InFlight], "pending", c[pipeline.Pending], "rows_per_second", float64(int(float64(done)/elapsed*10))/10)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func formatFailures(n int) string {
	if n == 0 {
		return "provisioning"
	}
	return fmt.Sprintf("provisioning, %d failed", n)
}

// barWidth fills the terminal's width when the terminal says what it is;
// some (a serial console, `script`, an IDE's pane) report 0 columns, where
// a full-width bar would have no bar at all.
func barWidth(w any) progressbar.Option {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols >= 60 {
			return progressbar.OptionFullWidth()
		}
	}
	return progressbar.OptionSetWidth(30)
}
