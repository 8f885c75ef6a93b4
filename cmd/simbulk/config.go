package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers"
	_ "github.com/simbulk/simbulk/providers/all" // the shipped providers
)

// Config is simbulk.yaml (README "Configuration"): per provider its endpoint,
// credentials, limits and field defaults. Credentials come in through
// ${VAR} references to the environment; they live only in memory and are
// never logged, stored in the checkpoint or written to a report.
type Config struct {
	Providers ProvidersConfig `yaml:"providers"`
	// Checkpoint is where the checkpoint is when neither --db nor
	// SIMBULK_DB says: a SQLite file, or a postgres:// URL (whose password
	// belongs in a ${VAR}).
	Checkpoint string `yaml:"checkpoint"`
	// Console configures simbulk serve.
	Console ConsoleConfig `yaml:"console"`
	Metrics MetricsConfig `yaml:"metrics"`

	// unset maps the path of each value that names an environment
	// variable that is not set (providers.asavie.client_secret) to the
	// variable. Only providers the manifest uses must have theirs set: one
	// config can serve every team, each with its own provider's secrets.
	unset map[string]string
}

// ProvidersConfig has one block per configured provider, by name; a
// provider without a block is not configured. The keys a block takes are
// its provider's (providers.Descriptor.NewConfig).
type ProvidersConfig map[string]providers.ConfigBlock

// LaneConfig are the settings every provider block shares.
type LaneConfig = providers.LaneConfig

// UnmarshalYAML decodes each provider's block into its provider's type.
// It takes the decoder's unmarshal function, not the node, so that the
// decoder's strictness (KnownFields) and line numbers reach inside the
// blocks.
func (pc *ProvidersConfig) UnmarshalYAML(unmarshal func(any) error) error {
	// A struct with a field per registered provider, decoded as one: the
	// yaml package checks each block's keys against the block's own type,
	// and a key that names no provider against the struct.
	descs := providers.Registered()
	fields := make([]reflect.StructField, len(descs))
	for i, d := range descs {
		fields[i] = reflect.StructField{Name: fmt.Sprintf("P%d", i), Type: reflect.TypeOf(d.NewConfig()),
			Tag: reflect.StructTag(fmt.Sprintf(`yaml:%q`, d.Name))}
	}
	blocks := reflect.New(reflect.StructOf(fields))
	if err := unmarshal(blocks.Interface()); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// Name the type as before: "field vodafone not found in type
			// main.ProvidersConfig".
			anon, named := blocks.Elem().Type().String(), reflect.TypeOf(*pc).String()
			for i, e := range te.Errors {
				te.Errors[i] = strings.ReplaceAll(e, anon, named)
			}
		}
		return err
	}
	*pc = ProvidersConfig{}
	for i, d := range descs {
		if f := blocks.Elem().Field(i); !f.IsNil() {
			(*pc)[d.Name] = f.Interface().(providers.ConfigBlock)
		}
	}
	return nil
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
	if c.Metrics.Addr != "" {
		if _, err := metricsListenAddr(c.Metrics.Addr); err != nil {
			return fmt.Errorf("metrics.addr: %w", err)
		}
	}
	names := providers.Names()
	for _, name := range names {
		if b := c.Providers[name]; b != nil {
			l := b.Lane()
			if l.Rate < 0 || l.Concurrency < 0 || l.MaxAttempts < 0 {
				return fmt.Errorf("providers.%s: rate, concurrency and max_attempts must not be negative", name)
			}
			if l.Checksum != "" && l.Checksum != "error" && l.Checksum != "warn" {
				return fmt.Errorf("providers.%s.checksum: %q, want error or warn", name, l.Checksum)
			}
		}
	}
	for _, name := range names {
		if b := c.Providers[name]; b != nil {
			if err := b.Check(); err != nil {
				return fmt.Errorf("providers.%s.%w", name, err)
			}
		}
	}
	return nil
}

// lanes returns the shared settings of each configured provider.
func (c *Config) lanes() map[string]*LaneConfig {
	out := map[string]*LaneConfig{}
	for name, b := range c.Providers {
		out[name] = b.Lane()
	}
	return out
}

// requireCredentials checks that each provider the manifest uses is
// configured with what its client needs; it names the missing keys, never
// any value.
func (c *Config) requireCredentials(used []string) error {
	var problems []string
	for _, at := range slices.Sorted(maps.Keys(c.unset)) {
		for _, p := range used {
			if strings.HasPrefix(at, "providers."+p+".") {
				problems = append(problems, fmt.Sprintf("%s (environment variable %s is not set)", at, c.unset[at]))
			}
		}
	}
	for _, p := range used {
		if _, ok := providers.Lookup(p); !ok {
			continue
		}
		b := c.Providers[p]
		if b == nil {
			problems = append(problems, "providers."+p+" (the block is missing)")
			continue
		}
		for _, cred := range b.Credentials() {
			at := "providers." + p + "." + cred.Key
			if _, ok := c.unset[at]; !ok && strings.TrimSpace(cred.Value) == "" {
				problems = append(problems, at)
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

// planner tells a dry run how provider p's rows become requests under
// this config: orders per request and their batching key, the rate limit,
// and what is missing from its configuration.
func (c *Config) planner(p string) (batch int, key func(providers.Order) string, rate float64, notConfigured error) {
	batch = 1
	if d, ok := providers.Lookup(p); ok && d.Requests != nil {
		batch, key = d.Requests(c.Providers[p])
	}
	if l := c.lanes()[p]; l != nil {
		rate = l.Rate
	}
	return batch, key, rate, c.requireCredentials([]string{p})
}

// credentialKeys names the config keys that hold a provider's credentials,
// for the message that ends a run whose provider refused them.
func credentialKeys(provider, configPath string) string {
	d, _ := providers.Lookup(provider)
	keys := d.CredentialKeys
	if keys == "" {
		keys = "the credentials of providers." + provider
	}
	if configPath != "" {
		keys += " in " + configPath
	}
	return keys
}
