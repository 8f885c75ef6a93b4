package rollout

import (
	"context"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers"
)

// Planner describes how a provider's rows become requests, for Plan: the
// orders per request, and the key by which orders may share one (nil: any
// may); its rate limit (0: none); and why it could not be used as
// configured (nil: it can).
type Planner func(provider string) (batch int, key func(providers.Order) string, rate float64, notConfigured error)

// PlanOptions shape a dry run.
type PlanOptions struct {
	Provider, Sheet string
}

// Plan is what a rollout of a manifest would send.
type Plan struct {
	Rows, Valid, Invalid int
	// Providers are those with valid rows, in providers.Names order.
	Providers []ProviderPlan
}

// ProviderPlan is one provider's share of a Plan.
type ProviderPlan struct {
	Provider       string
	Rows, Requests int
	// Rate is the provider's requests per second (0: unlimited), and
	// MinDuration the least time its requests take at that rate.
	Rate        float64
	MinDuration time.Duration
	// NotConfigured says why the provider cannot be used as configured.
	NotConfigured error
}

// Plan validates the manifest at path (a regular file: see LocalManifest)
// and counts the rows and requests each provider would get. It sends
// nothing and records nothing.
func (s *Service) Plan(ctx context.Context, path string, opts PlanOptions) (Plan, error) {
	r, err := ingest.OpenContext(ctx, path, ingest.OpenOptions{Sheet: opts.Sheet})
	if err != nil {
		return Plan{}, err
	}
	defer r.Close()
	perProvider := map[string]int{}
	// Rows share a request only when their provider's batching allows
	// (ThingSpace: when they agree on the request-level fields); count
	// requests per such group.
	type plan struct {
		batch  int
		key    func(providers.Order) string
		rate   float64
		err    error
		groups map[string]int
	}
	plans := map[string]*plan{}
	for _, d := range providers.Registered() {
		pl := &plan{batch: 1, groups: map[string]int{}}
		if s.Planner != nil {
			pl.batch, pl.key, pl.rate, pl.err = s.Planner(d.Name)
		}
		plans[d.Name] = pl
	}
	sum, _, err := ingest.Scan(r, s.validate(opts.Provider), func(row ingest.Row, problems []ingest.Problem) error {
		if !ingest.HasErrors(problems) {
			perProvider[row.Provider]++
			if pl := plans[row.Provider]; pl != nil && pl.key != nil {
				pl.groups[pl.key(providers.Order{EID: row.EID, ICCID: row.ICCID, CLI: row.CLI, IMEI: row.IMEI, Fields: row.Fields()})]++
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return Plan{}, err
	}
	out := Plan{Rows: sum.Rows, Valid: sum.Valid, Invalid: sum.Invalid}
	for _, p := range providers.Names() {
		n := perProvider[p]
		if n == 0 {
			continue
		}
		pl := plans[p]
		requests := (n + pl.batch - 1) / pl.batch
		if pl.key != nil {
			requests = 0
			for _, g := range pl.groups {
				requests += (g + pl.batch - 1) / pl.batch
			}
		}
		pp := ProviderPlan{Provider: p, Rows: n, Requests: requests, Rate: pl.rate, NotConfigured: pl.err}
		if pl.rate > 0 {
			pp.MinDuration = time.Duration(float64(requests) / pl.rate * float64(time.Second))
		}
		out.Providers = append(out.Providers, pp)
	}
	return out, nil
}
