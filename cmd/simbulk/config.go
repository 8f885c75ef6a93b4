package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/simbulk/simbulk/ingest"
)

// Config is simbulk.yaml (DESIGN.md "Config"): per provider its endpoint,
// credentials, limits and field defaults. Credentials come in through
// ${VAR} references to the environment; they live only in memory and are
// never logged, stored in the checkpoint or written to a report.
type Config struct {
	Providers ProvidersConfig `yaml:"providers"`

	// unset maps the path of each value that names an environment
	// variable that is not set (providers.asavie.client_secret) to the
	// variable. Only providers the manifest uses must have theirs set: one
	// config can serve every team, each with its own provider's secrets.
	unset map[string]string
}

// ProvidersConfig has one block per provider; a nil block is a provider
// that is not configured.
type ProvidersConfig struct {
	IoTConnect *IoTConnectConfig `yaml:"iotconnect"`
	Asavie     *AsavieConfig     `yaml:"asavie"`
	ThingSpace *ThingSpaceConfig `yaml:"thingspace"`
}

// LaneConfig are the settings every provider block shares.
type LaneConfig struct {
	Rate          float64       `yaml:"rate"`            // requests per second, shared by all workers; 0 = unlimited
	Concurrency   int           `yaml:"concurrency"`     // workers sending at once
	MaxAttempts   int           `yaml:"max_attempts"`    // sends before a retryable failure is final
	Timeout       time.Duration `yaml:"timeout"`         // one request
	MaxRetryAfter time.Duration `yaml:"max_retry_after"` // cap on a provider's Retry-After
	PollInterval  time.Duration `yaml:"poll_interval"`   // between looks at accepted work
	// CompletionTimeout is how long accepted work may take.
	CompletionTimeout time.Duration `yaml:"completion_timeout"`
	// Checksum is what a wrong check digit is: error (default) or warn.
	Checksum string `yaml:"checksum"`
	// AllowICCIDWithoutCheckDigit accepts ICCIDs that omit the Luhn digit.
	AllowICCIDWithoutCheckDigit bool              `yaml:"allow_iccid_without_check_digit"`
	Defaults                    map[string]string `yaml:"defaults"`
}

// IoTConnectConfig is providers.iotconnect.
type IoTConnectConfig struct {
	BaseURL      string `yaml:"base_url"`
	TokenURL     string `yaml:"token_url"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	LaneConfig   `yaml:",inline"`
}

// AsavieConfig is providers.asavie.
type AsavieConfig struct {
	BaseURL      string `yaml:"base_url"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	LaneConfig   `yaml:",inline"`
}

// ThingSpaceConfig is providers.thingspace.
type ThingSpaceConfig struct {
	BaseURL    string                    `yaml:"base_url"`
	Key        string                    `yaml:"key"`
	Secret     string                    `yaml:"secret"`
	Username   string                    `yaml:"username"`
	Password   string                    `yaml:"password"`
	BatchSize  int                       `yaml:"batch_size"`
	Callback   *ThingSpaceCallbackConfig `yaml:"callback"`
	LaneConfig `yaml:",inline"`
}

// ThingSpaceCallbackConfig is providers.thingspace.callback.
type ThingSpaceCallbackConfig struct {
	Listen    string `yaml:"listen"`
	PublicURL string `yaml:"public_url"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	// PollAfter is how long a row waits for its callback before its
	// request status is polled instead. ThingSpace retries an undelivered
	// callback 5 minutes later, so the default (thingspace's
	// DefaultCallbackGrace) waits past that gap.
	PollAfter time.Duration `yaml:"poll_after"`
	// anyPort lifts ThingSpace's rule on callback ports, for the
	// in-process simulators only (they listen on a random loopback port).
	anyPort bool
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// loadConfig reads and checks a config file. ${VAR} expands from the
// environment; YAML comments are dropped first so a commented-out line
// cannot demand a variable.
func loadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	// Parse once to a node tree to expand variables only in values.
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	unset := map[string]string{}
	expandNode(&root, "", unset)
	var outside []string // unset outside any provider's block: always an error
	for at, name := range unset {
		if !strings.HasPrefix(at, "providers.") || strings.Count(at, ".") < 2 {
			outside = append(outside, name)
		}
	}
	if len(outside) > 0 {
		slices.Sort(outside)
		return nil, fmt.Errorf("config %s: environment variable(s) not set: %s", path, strings.Join(slices.Compact(outside), ", "))
	}
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true) // a misspelt key is an error, not a silent default
	c := Config{unset: unset}
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// expandNode replaces ${VAR} in the scalar values under n (at is n's
// dotted path) and records in unset where a variable is not set.
func expandNode(n *yaml.Node, at string, unset map[string]string) {
	switch n.Kind {
	case yaml.ScalarNode:
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := os.LookupEnv(name)
			if !ok {
				unset[at] = name
			}
			return v
		})
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if at != "" {
				key = at + "." + key
			}
			expandNode(n.Content[i+1], key, unset)
		}
	default:
		for _, c := range n.Content {
			expandNode(c, at, unset)
		}
	}
}

// check validates what can be checked without knowing the manifest.
func (c *Config) check() error {
	for name, l := range c.lanes() {
		if l.Rate < 0 || l.Concurrency < 0 || l.MaxAttempts < 0 {
			return fmt.Errorf("providers.%s: rate, concurrency and max_attempts must not be negative", name)
		}
		if l.Checksum != "" && l.Checksum != "error" && l.Checksum != "warn" {
			return fmt.Errorf("providers.%s.checksum: %q, want error or warn", name, l.Checksum)
		}
	}
	if t := c.Providers.ThingSpace; t != nil && (t.BatchSize < 0 || t.BatchSize > 100) {
		return fmt.Errorf("providers.thingspace.batch_size: %d, want 1 to 100", t.BatchSize)
	}
	return nil
}

// lanes returns the shared settings of each configured provider.
func (c *Config) lanes() map[string]*LaneConfig {
	out := map[string]*LaneConfig{}
	if p := c.Providers.IoTConnect; p != nil {
		out[ingest.ProviderIoTConnect] = &p.LaneConfig
	}
	if p := c.Providers.Asavie; p != nil {
		out[ingest.ProviderAsavie] = &p.LaneConfig
	}
	if p := c.Providers.ThingSpace; p != nil {
		out[ingest.ProviderThingSpace] = &p.LaneConfig
	}
	return out
}

// requireCredentials checks that each provider the manifest uses is
// configured with what its client needs; it names the missing keys, never
// any value.
func (c *Config) requireCredentials(used []string) error {
	var problems []string
	need := func(provider string, fields map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			at := "providers." + provider + "." + k
			if _, ok := c.unset[at]; !ok && strings.TrimSpace(fields[k]) == "" {
				problems = append(problems, at)
			}
		}
	}
	for _, at := range slices.Sorted(maps.Keys(c.unset)) {
		for _, p := range used {
			if strings.HasPrefix(at, "providers."+p+".") {
				problems = append(problems, fmt.Sprintf("%s (environment variable %s is not set)", at, c.unset[at]))
			}
		}
	}
	for _, p := range used {
		switch p {
		case ingest.ProviderIoTConnect:
			b := c.Providers.IoTConnect
			if b == nil {
				problems = append(problems, "providers.iotconnect (the block is missing)")
				continue
			}
			need(p, map[string]string{"base_url": b.BaseURL, "token_url": b.TokenURL, "client_id": b.ClientID, "client_secret": b.ClientSecret})
		case ingest.ProviderAsavie:
			b := c.Providers.Asavie
			if b == nil {
				problems = append(problems, "providers.asavie (the block is missing)")
				continue
			}
			need(p, map[string]string{"base_url": b.BaseURL, "client_id": b.ClientID, "client_secret": b.ClientSecret})
		case ingest.ProviderThingSpace:
			b := c.Providers.ThingSpace
			if b == nil {
				problems = append(problems, "providers.thingspace (the block is missing)")
				continue
			}
			need(p, map[string]string{"base_url": b.BaseURL, "key": b.Key, "secret": b.Secret, "username": b.Username, "password": b.Password})
			if cb := b.Callback; cb != nil {
				need(p, map[string]string{"callback.listen": cb.Listen, "callback.username": cb.Username, "callback.password": cb.Password})
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the manifest needs providers that are not fully configured; missing: %s", strings.Join(problems, ", "))
	}
	return nil
}

// validateOptions are the ingest settings the config implies: per-provider
// defaults and strictness.
func (c *Config) validateOptions(provider string) ingest.ValidateOptions {
	opts := ingest.ValidateOptions{Provider: provider, Defaults: map[string]map[string]string{}, Rules: map[string]ingest.ProviderRules{}}
	for name, l := range c.lanes() {
		opts.Defaults[name] = l.Defaults
		rules := ingest.ProviderRules{Checksum: ingest.SeverityError, AllowICCIDWithoutCheckDigit: l.AllowICCIDWithoutCheckDigit}
		if l.Checksum == "warn" {
			rules.Checksum = ingest.SeverityWarning
		}
		opts.Rules[name] = rules
	}
	return opts
}

// credentialKeys names the config keys that hold a provider's credentials,
// for the message that ends a run whose provider refused them.
func credentialKeys(provider, configPath string) string {
	keys := map[string]string{
		ingest.ProviderIoTConnect: "providers.iotconnect.client_id, client_secret and token_url",
		ingest.ProviderAsavie:     "providers.asavie.client_id and client_secret",
		ingest.ProviderThingSpace: "providers.thingspace.key, secret, username and password (ThingSpace locks the account after 5 failed logins; simbulk stops after 2)",
	}[provider]
	if keys == "" {
		keys = "the credentials of providers." + provider
	}
	if configPath != "" {
		keys += " in " + configPath
	}
	return keys
}
