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

// CallbackGuard is a Client with a callback listener that refuses
// deliveries strangers send; CallbackRejections counts them by reason.
type CallbackGuard interface {
	CallbackRejections() map[string]int64
}
