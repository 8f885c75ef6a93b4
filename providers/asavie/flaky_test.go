package asavie_test

import (
	"context"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/providertest"
	"github.com/simbulk/simbulk/providers/simkit"
)

// TestFlakyRollout drives orders through the recovery protocol the
// pipeline follows (retry what is retryable, look up before re-sending
// what may have been applied, poll accepted work) against a simulator
// that faults a third of all requests, including HTTP 200 answers with
// Success:false and Code 500. Every order must end with its SIM created,
// and the simulator must have processed exactly one provisioning request
// per SIM: a Code 500 refuses before anything is recorded (so its resend is
// not a duplicate), and a fault that hid a creation is followed by a
// lookup, never a resend.
func TestFlakyRollout(t *testing.T) {
	faults := simkit.Faults{
		FaultRate: 0.3, Seed: 7, RetryAfter: time.Second,
		Kinds: []simkit.Fault{simkit.TooMany, simkit.Unavailable, simkit.ServerError, simkit.Drop, simkit.Garble, simkit.Refuse},
	}
	e := startEnv(t, providertest.Setup{Faults: faults, AsyncDelay: 5 * time.Millisecond, MaxRetryAfter: time.Millisecond}, asavie.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 40
	for i := range n {
		o := order(100 + i)
		if out := drive(ctx, t, e.client, o); out.Status != providers.Succeeded {
			t.Fatalf("order %d: %s %v", i, out.Status, out.Err)
		}
	}
	if got := e.sim.Count(); got != n {
		t.Errorf("simulator holds %d SIMs, want %d", got, n)
	}
	st := e.sim.Kit().Stats()
	if st.ProvisionRequests != n || len(st.Duplicates) != 0 {
		t.Errorf("%d provisioning requests for %d SIMs, duplicates %v: want exactly one each", st.ProvisionRequests, n, st.Duplicates)
	}
	if st.Counters["envelope_500"] == 0 || st.Faults[string(simkit.Garble)] == 0 {
		t.Errorf("the run did not exercise the faults it is meant to: %+v", st)
	}
}

// drive is a small model of the pipeline's treatment of one row.
func drive(ctx context.Context, t *testing.T, c *asavie.Client, o providers.Order) providers.Outcome {
	t.Helper()
	mustLookup := false
	for ctx.Err() == nil {
		if mustLookup {
			sub, err := c.Lookup(ctx, o)
			if err != nil {
				continue
			}
			mustLookup = false
			if sub.Found {
				for sub.Pending && ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
					if s, err := c.Lookup(ctx, o); err == nil {
						sub = s
					}
				}
				return providers.Outcome{Status: providers.Succeeded}
			}
		}
		out := c.Submit(ctx, []providers.Order{o})[0]
		for out.Status == providers.Accepted && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
			next := c.Check(ctx, o, out.Handle)
			if next.Status == providers.Failed && next.Err.Retryable {
				continue // a failed look, not a failed request
			}
			if next.Status == providers.Accepted {
				next.Handle = out.Handle
			}
			out = next
		}
		if out.Status != providers.Failed || !out.Err.Retryable {
			return out
		}
		mustLookup = out.Err.MaybeApplied
	}
	return providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeIncomplete}}
}
