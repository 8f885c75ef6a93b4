package thingspace

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/simbulk/simbulk/providers"
)

// How long the inbox keeps a delivery: one that a Check has read is kept a
// little while (Check stays idempotent, and a repeat is still recognised),
// one nobody asked about for a day is dropped.
const (
	keepRead   = 10 * time.Minute
	keepUnread = 24 * time.Hour
	sweepEvery = time.Minute
)

// CallbackStats counts deliveries by what became of them.
type CallbackStats struct {
	Received     int // authenticated, well-formed deliveries
	Duplicates   int // of those, repeats of a result already held
	Unauthorized int // wrong username or password: refused 401 (CallbackRejections' bad_credentials)
	Malformed    int // unreadable, not JSON or missing requestId/device: refused 400 (malformed)
	TooLarge     int // over MaxCallbackBody: refused 413 (too_large)
	Held         int // results held now
	NotShared    int // final results the run's shared store could not keep (see ShareCallbacks)
}

// delivery is what the inbox keeps of one callback.
type delivery struct {
	requestID string
	ids       map[string]string // by kind
	verdict   verdictKind
	status    string
	profile   profileResponse
	at        time.Time
	readAt    time.Time
}

// parseDelivery reads an authenticated callback body.
func parseDelivery(cb *callbackBody, now time.Time) (*delivery, error) {
	if strings.TrimSpace(cb.RequestID) == "" {
		return nil, errors.New("no requestId")
	}
	p, err := cb.profile()
	if err != nil {
		return nil, errors.New("unreadable deviceResponse")
	}
	ids := idsOf(cb.DeviceIDs)
	for k, v := range idsOf(p.DeviceIdentifierCollection) {
		if ids[k] == "" {
			ids[k] = v
		}
	}
	if ids[kindEID] == "" && ids[kindICCID] == "" && ids[kindIMEI] == "" {
		return nil, errors.New("no eid, iccid or imei in deviceIds")
	}
	return &delivery{
		requestID: strings.TrimSpace(cb.RequestID),
		ids:       ids,
		verdict:   verdict(cb.Status, p.EuiccStatus),
		status:    cb.Status,
		profile:   p,
		at:        now,
	}, nil
}

// keys are the inbox keys a delivery is found by.
func (d *delivery) keys() []string {
	var ks []string
	for _, kind := range []string{kindEID, kindICCID, kindIMEI} {
		if v := d.ids[kind]; v != "" {
			ks = append(ks, inboxKey(d.requestID, kind, v))
		}
	}
	return ks
}

func inboxKey(requestID, kind, id string) string { return requestID + "|" + kind + "|" + id }

// orderKeys are the inbox keys the order's device may be found by in the
// request: one per identifier the order has.
func orderKeys(requestID string, o providers.Order) []string {
	var ks []string
	for _, k := range [...]struct{ kind, id string }{{kindEID, o.EID}, {kindICCID, o.ICCID}, {kindIMEI, o.IMEI}} {
		if k.id != "" {
			ks = append(ks, inboxKey(requestID, k.kind, k.id))
		}
	}
	return ks
}

// outcome is the Check answer a final delivery gives.
func (d *delivery) outcome(o providers.Order, requestID string) providers.Outcome {
	p := d.profile
	if d.verdict == refused {
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code:    orDefault(string(p.EuiccStatusCode), orDefault(p.EuiccStatus, "activation_failed")),
			Message: orDefault(p.EuiccStatusDesc, "activation failed: status "+d.status+" "+p.EuiccStatus),
		}}
	}
	return succeeded(requestID, d.ids, o, map[string]string{
		"state":          p.State,
		"profile_status": p.ProfileStatus,
		"euicc_status":   p.EuiccStatus,
		"carrier_name":   p.CarrierName,
	})
}

// inbox holds callback results until Check asks. Deliveries may come
// before the request's Submit has returned, after a restart, twice, or in
// any order: the first final result for a device wins, a progress report
// never replaces a final one.
type inbox struct {
	now func() time.Time

	mu        sync.Mutex
	entries   map[string]*delivery
	stats     CallbackStats
	lastSweep time.Time
}

func newInbox(now func() time.Time) *inbox {
	return &inbox{now: now, entries: map[string]*delivery{}, lastSweep: now()}
}

func (b *inbox) statsSnapshot() CallbackStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	seen := map[*delivery]bool{}
	for _, d := range b.entries {
		seen[d] = true
	}
	s.Held = len(seen)
	return s
}

// put stores a delivery unless a final result for the device is held.
func (b *inbox) put(d *delivery) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Received++
	b.keepLocked(d)
}

// keep stores a result another host received (see fromShared), unless
// one for the device is held; it is no delivery of this listener's.
func (b *inbox) keep(d *delivery) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keepLocked(d)
}

func (b *inbox) notShared() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.NotShared++
}

func (b *inbox) keepLocked(d *delivery) {
	for _, k := range d.keys() {
		if old, ok := b.entries[k]; ok && (old.verdict != pendingVerdict || d.verdict == pendingVerdict) {
			b.stats.Duplicates++
			return
		}
	}
	for _, k := range d.keys() {
		b.entries[k] = d
	}
	b.sweepLocked()
}

// find returns the final result for the order's device in the request.
func (b *inbox) find(requestID string, o providers.Order) (*delivery, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range orderKeys(requestID, o) {
		if d, ok := b.entries[k]; ok && d.verdict != pendingVerdict {
			if d.readAt.IsZero() {
				d.readAt = b.now()
			}
			return d, true
		}
	}
	return nil, false
}

// sweepLocked drops old deliveries, at most once a minute.
func (b *inbox) sweepLocked() {
	now := b.now()
	if now.Sub(b.lastSweep) < sweepEvery {
		return
	}
	b.lastSweep = now
	for k, d := range b.entries {
		if (!d.readAt.IsZero() && now.Sub(d.readAt) > keepRead) || now.Sub(d.at) > keepUnread {
			delete(b.entries, k)
		}
	}
}
