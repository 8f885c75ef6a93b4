package asavie

import (
	"context"

	"github.com/simbulk/simbulk/providers"
)

// Name is the provider as manifests and the config file spell it.
const Name = "asavie"

// ConfigBlock is providers.asavie in simbulk.yaml.
type ConfigBlock struct {
	BaseURL              string `yaml:"base_url"`
	ClientID             string `yaml:"client_id"`
	ClientSecret         string `yaml:"client_secret"`
	providers.LaneConfig `yaml:",inline"`
}

// Lane returns the shared settings.
func (b *ConfigBlock) Lane() *providers.LaneConfig { return &b.LaneConfig }

// Check has nothing to check beyond the shared settings.
func (b *ConfigBlock) Check() error { return nil }

// Credentials are what the client needs set.
func (b *ConfigBlock) Credentials() []providers.Credential {
	return []providers.Credential{{Key: "base_url", Value: b.BaseURL}, {Key: "client_id", Value: b.ClientID},
		{Key: "client_secret", Value: b.ClientSecret}}
}

// Open builds the client.
func (b *ConfigBlock) Open(context.Context) (providers.Client, error) {
	return New(Config{BaseURL: b.BaseURL, ClientID: b.ClientID, ClientSecret: b.ClientSecret,
		Timeout: b.Timeout, MaxRetryAfter: b.MaxRetryAfter, PollInterval: b.PollInterval})
}

// Descriptor describes Asavie to the provider registry.
func Descriptor() providers.Descriptor {
	return providers.Descriptor{
		Name:      Name,
		NewConfig: func() providers.ConfigBlock { return new(ConfigBlock) },
		SimConfig: func(base string, lane providers.LaneConfig, _ providers.SimClient) providers.ConfigBlock {
			return &ConfigBlock{BaseURL: base, ClientID: SimClientID, ClientSecret: SimClientSecret, LaneConfig: lane}
		},
		CredentialKeys: "providers.asavie.client_id and client_secret",
		Manifest:       Manifest(),
		NewSimulator: func(s providers.SimSettings) providers.Simulator {
			return NewSimulator(SimOptions{Faults: s.Faults, AsyncDelay: s.AsyncDelay, Forms: s.Forms})
		},
		Routes: []string{"/v1/"},
	}
}

// Create seeds a ready SIM the run did not create (POST /_sim/drift): id
// is the CLI, fields give account and iccid.
func (s *Simulator) Create(cli string, f map[string]string) (bool, error) {
	s.Seed(f["account"], SIMCard{CLI: cli, SIMNumber: f["iccid"], State: StateReady})
	return true, nil
}

var (
	_ providers.Poller  = (*Client)(nil)
	_ providers.Closer  = (*Client)(nil)
	_ providers.Drifter = (*Simulator)(nil)
)
