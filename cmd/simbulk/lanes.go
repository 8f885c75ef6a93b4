package main

import (
	"context"
	"fmt"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/simset"
	"github.com/simbulk/simbulk/providers/thingspace"
)

// simulatedConfig starts the three simulators in-process on a loopback port
// and returns a config that points every provider at them with the
// simulators' demo credentials. stop shuts them down.
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
	cfg := &Config{Providers: ProvidersConfig{
		IoTConnect: &IoTConnectConfig{BaseURL: base, TokenURL: base + "/oauth2/token",
			ClientID: iotconnect.SimClientID, ClientSecret: iotconnect.SimClientSecret, LaneConfig: lane},
		Asavie: &AsavieConfig{BaseURL: base, ClientID: asavie.SimClientID, ClientSecret: asavie.SimClientSecret, LaneConfig: lane},
		ThingSpace: &ThingSpaceConfig{BaseURL: base, Key: thingspace.SimKey, Secret: thingspace.SimSecret,
			Username: thingspace.SimUsername, Password: thingspace.SimPassword, BatchSize: 100, LaneConfig: lane,
			// Callbacks to an in-process listener: the simulator delivers
			// them as the real service would, and a lost one is polled.
			// The simulator retries a lost callback after 500ms, not 5
			// minutes: poll soon after that.
			Callback: &ThingSpaceCallbackConfig{Listen: "127.0.0.1:0", Username: "simbulk-callback", Password: "simulated-callback-password",
				PollAfter: 3 * time.Second, anyPort: true}},
	}}
	return cfg, stop, nil
}

// openLanes builds a client and a pipeline lane for each provider used,
// after checking that each is configured with what its client needs.
// closeAll stops what the clients run (the ThingSpace callback listener).
func openLanes(ctx context.Context, cfg *Config, used []string, concurrency int) (map[string]*pipeline.Lane, func(), error) {
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
	lane := func(name string, client pipeline.Provider, l LaneConfig, batch int, poll time.Duration) {
		if l.PollInterval > 0 {
			poll = l.PollInterval
		}
		ln := &pipeline.Lane{Name: name, Client: client, Concurrency: l.Concurrency, Rate: l.Rate, BatchSize: batch,
			MaxAttempts: l.MaxAttempts, PollInterval: poll, CompletionTimeout: l.CompletionTimeout}
		if concurrency > 0 {
			ln.Concurrency = concurrency
		}
		lanes[name] = ln
	}
	for _, name := range used {
		switch name {
		case ingest.ProviderIoTConnect:
			b := cfg.Providers.IoTConnect
			c, err := iotconnect.New(iotconnect.Config{BaseURL: b.BaseURL, TokenURL: b.TokenURL, ClientID: b.ClientID,
				ClientSecret: b.ClientSecret, Timeout: b.Timeout, MaxRetryAfter: b.MaxRetryAfter, PollInterval: b.PollInterval})
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("providers.iotconnect: %w", err)
			}
			closers = append(closers, c.Close)
			lane(name, c, b.LaneConfig, 1, c.PollInterval())
		case ingest.ProviderAsavie:
			b := cfg.Providers.Asavie
			c, err := asavie.New(asavie.Config{BaseURL: b.BaseURL, ClientID: b.ClientID, ClientSecret: b.ClientSecret,
				Timeout: b.Timeout, MaxRetryAfter: b.MaxRetryAfter, PollInterval: b.PollInterval})
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("providers.asavie: %w", err)
			}
			closers = append(closers, c.Close)
			lane(name, c, b.LaneConfig, 1, c.PollInterval())
		case ingest.ProviderThingSpace:
			b := cfg.Providers.ThingSpace
			tc := thingspace.Config{BaseURL: b.BaseURL, Key: b.Key, Secret: b.Secret, Username: b.Username, Password: b.Password,
				AccountName: b.Defaults[ingest.ColAccountName], BatchSize: b.BatchSize, Timeout: b.Timeout,
				MaxRetryAfter: b.MaxRetryAfter, PollInterval: b.PollInterval}
			if cb := b.Callback; cb != nil {
				tc.Callback = &thingspace.CallbackConfig{Listen: cb.Listen, PublicURL: cb.PublicURL, Username: cb.Username, Password: cb.Password}
				tc.CallbackGrace = cb.PollAfter
				tc.AnyCallbackPort = cb.anyPort
			}
			c, err := thingspace.New(tc)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("providers.thingspace: %w", err)
			}
			closers = append(closers, c.Close)
			if tc.Callback != nil {
				if err := c.Start(ctx); err != nil {
					closeAll()
					return nil, nil, fmt.Errorf("providers.thingspace: start callback listener: %w", err)
				}
			}
			lane(name, c, b.LaneConfig, c.BatchSize(), c.PollInterval())
		}
	}
	return lanes, closeAll, nil
}

// callbackRejectedPrefix names the run counters of refused callback
// deliveries: callback_rejected_<reason>.
const callbackRejectedPrefix = "callback_rejected_"

// callbackGuard is a client with a callback listener that refuses
// deliveries strangers send (ThingSpace).
type callbackGuard interface {
	CallbackRejections() map[string]int64
}

// recordRefusedCallbacks adds the deliveries each lane's listener refused
// in this process to the run's counters and says so in the log: a flood of
// refusals is somebody probing the listener, or a proxy that mangles the
// registered URL.
func (a *app) recordRefusedCallbacks(ctx context.Context, cp pipeline.Store, runID string, lanes map[string]*pipeline.Lane) {
	for name, l := range lanes {
		g, ok := l.Client.(callbackGuard)
		if !ok {
			continue
		}
		counts := map[string]int64{}
		attrs := []any{"provider", name, "run", runID}
		var total int64
		for reason, n := range g.CallbackRejections() {
			if n > 0 {
				counts[callbackRejectedPrefix+reason] = n
				attrs = append(attrs, reason, n)
				total += n
			}
		}
		if total == 0 {
			continue
		}
		a.logger().Warn("callback deliveries refused", append(attrs, "total", total)...)
		if err := cp.AddRunCounters(context.WithoutCancel(ctx), runID, counts); err != nil {
			a.logger().Warn("could not record refused callbacks", "error", err.Error())
		}
	}
}
