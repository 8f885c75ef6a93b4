package main

import (
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
)

// progressRenderer shows a rollout's progress events: a progress bar on
// stderr when it is a terminal, otherwise one log line every few seconds
// (cron logs want a heartbeat, not a redrawn bar).
type progressRenderer struct {
	a           *app
	interactive bool
	every       time.Duration // how often the service should send Progress
	bar         *progressbar.ProgressBar
}

func (a *app) progressRenderer() *progressRenderer {
	r := &progressRenderer{a: a, interactive: isTerminal(a.stderr), every: 5 * time.Second}
	if r.interactive {
		r.every = 500 * time.Millisecond
	}
	return r
}

// event renders one event of the rollout service. The provider notices
// and the load are already in the log the service writes.
func (r *progressRenderer) event(e rollout.Event) {
	switch e := e.(type) {
	case rollout.Progress:
		r.progress(e)
	case rollout.Finished:
		r.stop()
	}
}

func (r *progressRenderer) progress(p rollout.Progress) {
	c := p.Counts
	if r.interactive {
		if r.bar == nil {
			r.bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(r.a.stderr),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
				progressbar.OptionSetPredictTime(true), barWidth(r.a.stderr), progressbar.OptionClearOnFinish())
		}
		r.bar.Describe(formatFailures(c[pipeline.Failed]))
		_ = r.bar.Set(p.Done)
		return
	}
	r.a.logger().Info("progress", "run", p.RunID, "done", p.Done, "total", p.Total,
		"succeeded", c[pipeline.Succeeded], "failed", c[pipeline.Failed], "accepted", c[pipeline.Accepted],
		"in_flight", c[pipeline.InFlight], "pending", c[pipeline.Pending], "rows_per_second", p.RowsPerSecond)
}

// stop clears the bar, if there is one.
func (r *progressRenderer) stop() {
	if r.bar != nil {
		_ = r.bar.Finish()
		r.bar = nil
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
