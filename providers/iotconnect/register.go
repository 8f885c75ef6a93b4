package iotconnect

import (
	"context"

	"github.com/simbulk/simbulk/providers"
)

// Name is the provider as manifests and the config file spell it.
const Name = "iotconnect"

// ConfigBlock is providers.iotconnect in simbulk.yaml.
type ConfigBlock struct {
	BaseURL              string `yaml:"base_url"`
	TokenURL             string `yaml:"token_url"`
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
		{Key: "client_secret", Value: b.ClientSecret}, {Key: "token_url", Value: b.TokenURL}}
}

// Open builds the client.
func (b *ConfigBlock) Open(context.Context) (providers.Client, error) {
	return New(Config{BaseURL: b.BaseURL, TokenURL: b.TokenURL, ClientID: b.ClientID, ClientSecret: b.ClientSecret,
		Timeout: b.Timeout, MaxRetryAfter: b.MaxRetryAfter, PollInterval: b.PollInterval})
}

// Descriptor describes IoT Connect to the provider registry.
func Descriptor() providers.Descriptor {
	return providers.Descriptor{
		Name:      Name,
		NewConfig: func() providers.ConfigBlock { return new(ConfigBlock) },
		SimConfig: func(base string, lane providers.LaneConfig, _ providers.SimClient) providers.ConfigBlock {
			return &ConfigBlock{BaseURL: base, TokenURL: base + SimTokenPath, ClientID: SimClientID, ClientSecret: SimClientSecret, LaneConfig: lane}
		},
		CredentialKeys: "providers.iotconnect.client_id, client_secret and token_url",
		Manifest:       Manifest(),
		NewSimulator: func(s providers.SimSettings) providers.Simulator {
			return NewSimulator(SimOptions{Faults: s.Faults, AsyncDelay: s.AsyncDelay, Forms: s.Forms})
		},
		Routes: []string{SimTokenPath, "/iot-connect/"},
	}
}

// Create preloads a registration the run did not make (POST /_sim/drift).
func (s *Simulator) Create(eid string, f map[string]string) (bool, error) {
	_, err := s.Preload(Registration{EID: eid, CMP: f["cmp"], EUICCAgreementID: f["euicc_agreement_id"], LocaleID: f["locale_id"], DomainID: f["domain_id"]})
	return err == nil, err
}

var (
	_ providers.Poller  = (*Client)(nil)
	_ providers.Closer  = (*Client)(nil)
	_ providers.Drifter = (*Simulator)(nil)
)
