package thingspace

import (
	"context"
	"encoding/json"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// ShareCallbacks keeps final callback results in store as well as in the
// listener's own inbox, and looks there when a Check finds nothing of its
// own: with several hosts on one run, ThingSpace calls back the one URL
// registered for the account (the last host to register it, or a load
// balancer), which need not be the host following the row. Call it before
// Start.
func (c *Client) ShareCallbacks(store providers.CallbackStore) {
	c.shared = store
}

// sharedResult is what the shared store keeps of a final delivery: the
// result alone. The delivery's username and password, checked by the
// listener, stay out of it: the checkpoint holds no secrets.
type sharedResult struct {
	RequestID string            `json:"request_id"`
	Status    string            `json:"status"`
	IDs       map[string]string `json:"ids"`
	Profile   profileResponse   `json:"profile"`
}

// share keeps a final delivery in the shared store. A failure is not the
// sender's: the delivery is in this host's inbox, and a row another host
// follows completes by polling after CallbackGrace, so the delivery is
// still answered 200 and only counted.
func (c *Client) share(ctx context.Context, d *delivery) {
	if c.shared == nil || d.verdict == pendingVerdict {
		return
	}
	b, err := json.Marshal(sharedResult{RequestID: d.requestID, Status: d.status, IDs: d.ids, Profile: d.profile})
	if err == nil {
		err = c.shared.PutCallback(ctx, Name, d.keys(), b)
	}
	if err != nil {
		c.box.notShared()
	}
}

// sharedWait bounds a look at the shared store from a delivery or a Check:
// a checkpoint out of reach must not hold either longer.
const sharedWait = 5 * time.Second

// fromShared looks for a final result of the order's device in the
// request among the results other hosts received, and keeps one found in
// this host's inbox, so the next Check need not ask again.
func (c *Client) fromShared(ctx context.Context, requestID string, o providers.Order) (*delivery, bool) {
	if c.shared == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, sharedWait)
	defer cancel()
	b, found, err := c.shared.Callback(ctx, Name, orderKeys(requestID, o))
	if err != nil || !found {
		return nil, false
	}
	var r sharedResult
	if json.Unmarshal(b, &r) != nil || r.RequestID != requestID || len(r.IDs) == 0 {
		return nil, false
	}
	d := &delivery{requestID: r.RequestID, ids: r.IDs, verdict: verdict(r.Status, r.Profile.EuiccStatus),
		status: r.Status, profile: r.Profile, at: c.now()}
	if d.verdict == pendingVerdict {
		return nil, false
	}
	c.box.keep(d)
	return c.box.find(requestID, o)
}
