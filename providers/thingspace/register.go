package thingspace

import (
	"context"
	"fmt"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers"
)

// Name is the provider as manifests and the config file spell it.
const Name = "thingspace"

// ConfigBlock is providers.thingspace in simbulk.yaml.
type ConfigBlock struct {
	BaseURL              string               `yaml:"base_url"`
	Key                  string               `yaml:"key"`
	Secret               string               `yaml:"secret"`
	Username             string               `yaml:"username"`
	Password             string               `yaml:"password"`
	BatchSize            int                  `yaml:"batch_size"`
	Callback             *CallbackConfigBlock `yaml:"callback"`
	providers.LaneConfig `yaml:",inline"`
}

// CallbackConfigBlock is providers.thingspace.callback.
type CallbackConfigBlock struct {
	Listen    string `yaml:"listen"`
	PublicURL string `yaml:"public_url"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	// PollAfter is how long a row waits for its callback before its
	// request status is polled instead. ThingSpace retries an undelivered
	// callback 5 minutes later, so the default (DefaultCallbackGrace)
	// waits past that gap.
	PollAfter time.Duration `yaml:"poll_after"`
}

// Lane returns the shared settings.
func (b *ConfigBlock) Lane() *providers.LaneConfig { return &b.LaneConfig }

// Check checks batch_size.
func (b *ConfigBlock) Check() error {
	if b.BatchSize < 0 || b.BatchSize > 100 {
		return fmt.Errorf("batch_size: %d, want 1 to 100", b.BatchSize)
	}
	return nil
}

// Credentials are what the client needs set; with a callback block, what
// its listener needs too.
func (b *ConfigBlock) Credentials() []providers.Credential {
	need := []providers.Credential{{Key: "base_url", Value: b.BaseURL}, {Key: "key", Value: b.Key},
		{Key: "password", Value: b.Password}, {Key: "secret", Value: b.Secret}, {Key: "username", Value: b.Username}}
	if cb := b.Callback; cb != nil {
		need = append(need, providers.Credential{Key: "callback.listen", Value: cb.Listen},
			providers.Credential{Key: "callback.password", Value: cb.Password},
			providers.Credential{Key: "callback.username", Value: cb.Username})
	}
	return need
}

// Open builds the client; with a callback block its Start runs the
// listener.
func (b *ConfigBlock) Open(context.Context) (providers.Client, error) {
	tc := Config{BaseURL: b.BaseURL, Key: b.Key, Secret: b.Secret, Username: b.Username, Password: b.Password,
		AccountName: b.Defaults[ingest.ColAccountName], BatchSize: b.BatchSize, Timeout: b.Timeout,
		MaxRetryAfter: b.MaxRetryAfter, PollInterval: b.PollInterval}
	if cb := b.Callback; cb != nil {
		tc.Callback = &CallbackConfig{Listen: cb.Listen, PublicURL: cb.PublicURL, Username: cb.Username, Password: cb.Password}
		tc.CallbackGrace = cb.PollAfter
	}
	return New(tc)
}

// Descriptor describes ThingSpace to the provider registry.
func Descriptor() providers.Descriptor {
	return providers.Descriptor{
		Name:      Name,
		NewConfig: func() providers.ConfigBlock { return new(ConfigBlock) },
		SimConfig: func(base string, lane providers.LaneConfig, c providers.SimClient) providers.ConfigBlock {
			b := &ConfigBlock{BaseURL: base, Key: SimKey, Secret: SimSecret,
				Username: SimUsername, Password: SimPassword, BatchSize: 100, LaneConfig: lane}
			if c.BatchSize > 0 {
				b.BatchSize = c.BatchSize
			}
			if c.PollOnly {
				return b
			}
			// Callbacks to an in-process listener: the simulator delivers
			// them as the real service would, and a lost one is polled.
			// The simulator retries a lost callback after 500ms, not 5
			// minutes: poll soon after that.
			b.Callback = &CallbackConfigBlock{Listen: "127.0.0.1:0", Username: "simbulk-callback", Password: "simulated-callback-password",
				PollAfter: 3 * time.Second}
			if c.CallbackGrace > 0 {
				b.Callback.PollAfter = c.CallbackGrace
			}
			return b
		},
		CredentialKeys: "providers.thingspace.key, secret, username and password (ThingSpace locks the account after 5 failed logins; simbulk stops after 2)",
		// Rows share an activate request only when they agree on its
		// request-level fields.
		Requests: func(block providers.ConfigBlock) (int, func(providers.Order) string) {
			batch, account := 100, ""
			if b, ok := block.(*ConfigBlock); ok && b != nil {
				account = b.Defaults[ingest.ColAccountName]
				if b.BatchSize > 0 {
					batch = b.BatchSize
				}
			}
			return batch, func(o providers.Order) string { return RequestGroup(o, account) }
		},
		Manifest: Manifest(),
		NewSimulator: func(s providers.SimSettings) providers.Simulator {
			opts := SimOptions{Faults: s.Faults, AsyncDelay: s.AsyncDelay, Forms: s.Forms}
			if s.Faults.FaultRate > 0 {
				// Callbacks misbehave in proportion: some arrive twice, some
				// late and out of order, a few never (the client's poll
				// fallback must notice).
				opts.CallbackDuplicate = s.Faults.FaultRate
				opts.CallbackJitter = 2 * s.AsyncDelay
				opts.CallbackLoss = s.Faults.FaultRate / 2
			}
			return NewSimulator(opts)
		},
		Routes: []string{"/api/"},
	}
}

// Create preloads an active device the run did not activate (POST
// /_sim/drift): id is the EID, fields give account_name and iccid.
func (s *Simulator) Create(eid string, f map[string]string) (bool, error) {
	s.Preload(f["account_name"], eid, f["iccid"])
	return true, nil
}

var (
	_ providers.Batcher       = (*Client)(nil)
	_ providers.Poller        = (*Client)(nil)
	_ providers.Starter       = (*Client)(nil)
	_ providers.Closer        = (*Client)(nil)
	_ providers.CallbackGuard = (*Client)(nil)
	_ providers.Drifter       = (*Simulator)(nil)
)
