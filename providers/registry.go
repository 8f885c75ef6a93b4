package providers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers/simkit"
)

// Descriptor is everything simbulk knows of one provider: its name, its
// block of the config file, its client, its simulator and its manifest
// rules. Each provider package returns its own (iotconnect.Descriptor());
// providers/all registers the shipped ones. Config, lanes, `sim serve`,
// simset and the benchmarks loop over the registered descriptors instead
// of naming providers.
type Descriptor struct {
	// Name is the provider as manifests and the config file spell it
	// ("iotconnect"); the config block is providers.<Name>.
	Name string
	// NewConfig returns an empty config block to decode providers.<Name>
	// into: a pointer to a struct with yaml tags, decoded strictly (an
	// unknown key is an error).
	NewConfig func() ConfigBlock
	// SimConfig returns a block pointed at the simulator served at base
	// with the simulator's demo credentials, lane settings lane and client
	// settings c (`run --simulate` passes the zero SimClient; tests and
	// benchmarks shape the client with it).
	SimConfig func(base string, lane LaneConfig, c SimClient) ConfigBlock
	// CredentialKeys names the config keys of the credentials, for the
	// message that ends a run whose provider refused them
	// ("providers.asavie.client_id and client_secret"). Empty: the
	// credentials of providers.<Name>.
	CredentialKeys string
	// Requests says how a dry run counts requests: orders per request and
	// which orders may share one (nil: any). block is nil when the
	// provider is not configured. Nil Requests: one order per request.
	Requests func(block ConfigBlock) (batch int, key func(Order) string)
	// Manifest are the provider's manifest rules: the columns its rows
	// need, its CLI form and the checks of its own fields. Register hands
	// them to ingest, which knows no provider of its own.
	Manifest ingest.Manifest
	// NewSimulator builds the provider's simulator.
	NewSimulator func(SimSettings) Simulator
	// Routes are the paths its simulator answers behind one address: a
	// route ending in / is a prefix, any other an exact path. Providers'
	// routes must not overlap.
	Routes []string
}

// LaneConfig are the settings every provider's config block shares
// (inline in the block).
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

// SimClient shapes a client SimConfig points at a simulator beyond the
// lane settings. The zero value is what `run --simulate` uses.
type SimClient struct {
	// BatchSize is the most orders per request of a provider whose
	// requests carry several (0: SimConfig's own choice).
	BatchSize int
	// PollOnly completes accepted work by polling alone where the provider
	// could call back.
	PollOnly bool
	// CallbackGrace is how long accepted work waits for its callback
	// before it is polled (0: SimConfig's own choice).
	CallbackGrace time.Duration
}

// Credential is one config key a provider's client needs, relative to the
// provider's block ("client_secret", "callback.password"), and its value.
type Credential struct {
	Key, Value string
}

// ConfigBlock is one provider's block of the config file.
type ConfigBlock interface {
	// Lane returns the settings every block shares.
	Lane() *LaneConfig
	// Check validates the block's own keys (the shared ones are checked
	// by the caller); errors name the key relative to the block.
	Check() error
	// Credentials lists what the client needs to be set, in the order a
	// message should name the missing ones.
	Credentials() []Credential
	// Open builds the client. The caller starts it (Starter), sizes its
	// lane (Batcher, Poller) and closes it (Closer).
	Open(ctx context.Context) (Client, error)
}

// SimSettings are what every simulator is built with.
type SimSettings struct {
	Faults simkit.Faults
	// AsyncDelay is how long accepted work takes to complete.
	AsyncDelay time.Duration
	// Forms is the public wire form of the disputed shapes.
	Forms simkit.Forms
}

// Simulator is a provider's stand-in: an http.Handler with simkit's fault
// model and counters in front.
type Simulator interface {
	http.Handler
	Kit() *simkit.Kit
}

// Drifter is a Simulator whose records a test may change as the field does
// (POST /_sim/drift): each returns false when there is no record id.
type Drifter interface {
	Forget(id string) bool
	SetState(id, state string) bool
	Alter(id, field, value string) bool
	// Create makes a record the run did not provision, from fields by
	// canonical name.
	Create(id string, fields map[string]string) (bool, error)
}

var (
	regMu    sync.RWMutex
	registry []Descriptor
)

// Register makes a provider known: to the config file, the pipeline's
// lanes, the simulators and manifest validation (ingest.RegisterManifest).
// Call it at start-up, before any of them is used; providers/all does for
// the shipped providers. Registering a name twice panics.
func Register(d Descriptor) {
	if d.Name == "" || d.NewConfig == nil {
		panic("providers.Register: a descriptor needs a Name and NewConfig")
	}
	regMu.Lock()
	defer regMu.Unlock()
	if slices.ContainsFunc(registry, func(r Descriptor) bool { return r.Name == d.Name }) {
		panic(fmt.Sprintf("providers.Register: %q registered twice", d.Name))
	}
	registry = append(registry, d)
	ingest.RegisterManifest(d.Name, d.Manifest)
}

// Unregister forgets a provider; for tests that register one of their own.
func Unregister(name string) {
	regMu.Lock()
	defer regMu.Unlock()
	registry = slices.DeleteFunc(registry, func(r Descriptor) bool { return r.Name == name })
	ingest.UnregisterManifest(name)
}

// Registered returns the registered providers in the order of registration.
func Registered() []Descriptor {
	regMu.RLock()
	defer regMu.RUnlock()
	return slices.Clone(registry)
}

// Names returns the registered providers' names, in order.
func Names() []string {
	var names []string
	for _, d := range Registered() {
		names = append(names, d.Name)
	}
	return names
}

// Lookup returns the descriptor of provider name.
func Lookup(name string) (Descriptor, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	i := slices.IndexFunc(registry, func(r Descriptor) bool { return r.Name == name })
	if i < 0 {
		return Descriptor{}, false
	}
	return registry[i], true
}
