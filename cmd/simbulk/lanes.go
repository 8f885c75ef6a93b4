package main

import (
	"context"
	"fmt"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/simset"
)

// simulatedConfig starts every registered provider's simulator
// in-process on a loopback port and returns a config that points every
// provider at them with the simulators' demo credentials. stop shuts them
// down.
func simulatedConfig(profile string, asyncDelay time.Duration, formsName string) (*Config, func(), error) {
	f := simFlags{profile: profile, seed: 1}
	faults, err := f.faults(nil)
	if err != nil {
		return nil, nil, err
	}
	forms, err := simkit.ParseForms(formsName)
	if err != nil {
		return nil, nil, err
	}
	set := simset.New(faults, asyncDelay, forms)
	base, stopServer, err := simset.ServeLoopback(set, 2*time.Second)
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		stopServer()
		set.Close()
	}
	lane := LaneConfig{Concurrency: 16, Timeout: 5 * time.Second, MaxRetryAfter: 5 * time.Second,
		PollInterval: 200 * time.Millisecond, MaxAttempts: 8}
	cfg := &Config{Providers: ProvidersConfig{}}
	for _, d := range providers.Registered() {
		if d.SimConfig != nil {
			cfg.Providers[d.Name] = d.SimConfig(base, lane, providers.SimClient{})
		}
	}
	return cfg, stop, nil
}

// openLanes builds a client and a pipeline lane for each provider used,
// after checking that each is configured with what its client needs.
// closeAll stops what the clients run (the ThingSpace callback listener).
// With callbacks (a checkpoint several hosts share), clients that take
// callbacks keep them there for every worker of the run.
func openLanes(ctx context.Context, cfg *Config, used []string, concurrency int, callbacks providers.CallbackStore) (map[string]*pipeline.Lane, func(), error) {
	if err := cfg.requireCredentials(used); err != nil {
		return nil, nil, err
	}
	lanes := map[string]*pipeline.Lane{}
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			_ = c()
		}
	}
	for _, name := range used {
		b := cfg.Providers[name]
		if _, ok := providers.Lookup(name); !ok || b == nil {
			continue
		}
		c, err := b.Open(ctx)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("providers.%s: %w", name, err)
		}
		if cl, ok := c.(providers.Closer); ok {
			closers = append(closers, cl.Close)
		}
		if cs, ok := c.(providers.CallbackSharer); ok && callbacks != nil {
			cs.ShareCallbacks(callbacks)
		}
		if st, ok := c.(providers.Starter); ok {
			if err := st.Start(ctx); err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("providers.%s: start callback listener: %w", name, err)
			}
		}
		batch, poll := 1, time.Duration(0)
		if bt, ok := c.(providers.Batcher); ok {
			batch = bt.BatchSize()
		}
		if p, ok := c.(providers.Poller); ok {
			poll = p.PollInterval()
		}
		l := b.Lane()
		if l.PollInterval > 0 {
			poll = l.PollInterval
		}
		ln := &pipeline.Lane{Name: name, Client: c, Concurrency: l.Concurrency, Rate: l.Rate, BatchSize: batch,
			MaxAttempts: l.MaxAttempts, PollInterval: poll, CompletionTimeout: l.CompletionTimeout}
		if concurrency > 0 {
			ln.Concurrency = concurrency
		}
		lanes[name] = ln
	}
	return lanes, closeAll, nil
}
