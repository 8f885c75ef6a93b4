package main

import (
	"log/slog"
	"time"
)

// progressLog writes one structured line every so often during a long
// pass over a manifest, so that a cron log shows the job is alive without
// a line per row.
type progressLog struct {
	log      *slog.Logger
	manifest string
	every    time.Duration
	last     time.Time
}

func (p *progressLog) rows(n int) {
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.log.Info("validating", "manifest", p.manifest, "rows", n)
	}
}
