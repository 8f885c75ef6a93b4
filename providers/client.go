package providers

import (
	"context"
	"time"
)

// Client is a provider client: the three calls the pipeline makes. Every
// provider package's client satisfies it; what a client can do beyond
// them it says through the optional interfaces below, which callers
// discover with a type assertion (as database/sql does with its drivers).
type Client interface {
	// Submit sends a batch (at most the client's batch size) and returns
	// one Outcome per order, in order. It never returns fewer.
	Submit(ctx context.Context, orders []Order) []Outcome
	// Check takes one look at accepted work: Accepted means not yet.
	Check(ctx context.Context, order Order, handle string) Outcome
	// Lookup asks what the provider holds for the order's identifier.
	Lookup(ctx context.Context, order Order) (Subscription, error)
}

// Batcher is a Client whose requests carry several orders (ThingSpace).
// Orders with equal BatchKey may share a Submit; BatchSize is the most one
// Submit may carry. A Client that is not a Batcher sends one order per
// request.
type Batcher interface {
	BatchKey(order Order) string
	BatchSize() int
}

// Poller is a Client that says how often its accepted work should be
// checked; the lane's configured poll_interval overrides it.
type Poller interface {
	PollInterval() time.Duration
}

// Starter is a Client with something to run before the first Submit (the
// ThingSpace callback listener). Start is called once; the client's Close
// stops what it started.
type Starter interface {
	Start(ctx context.Context) error
}

// Closer is a Client that holds resources until closed.
type Closer interface {
	Close() error
}

// CallbackStore keeps what providers call back with where every worker of
// a run can read it. A provider calls back one URL, which reaches one
// host, while the row may be followed by a worker on another: the
// checkpoint shared by the run's hosts (PostgreSQL) implements it. Results
// are opaque bytes to the store, found by any of the keys they were put
// under; the first put under a key stays.
type CallbackStore interface {
	PutCallback(ctx context.Context, provider string, keys []string, result []byte) error
	// Callback returns the result put under any of keys, found false
	// when there is none.
	Callback(ctx context.Context, provider string, keys []string) (result []byte, found bool, err error)
}

// CallbackSharer is a Client whose callbacks the run's other workers may
// need; ShareCallbacks, before Start, gives it the store to keep them in.
type CallbackSharer interface {
	ShareCallbacks(CallbackStore)
}

// CallbackGuard is a Client with a callback listener that refuses
// deliveries strangers send; CallbackRejections counts them by reason.
type CallbackGuard interface {
	CallbackRejections() map[string]int64
}
