package thingspace

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/simbulk/simbulk/providers"
)

// Check learns where an accepted order stands, with one look: at the
// callback inbox in callback mode (polling instead once CallbackGrace has
// passed since the row's first Check without a callback), otherwise at the
// request status. A failure to get an answer keeps the order Accepted, with
// Err saying why, since the activation may still complete: only the
// provider's verdict fails a row.
func (c *Client) Check(ctx context.Context, o providers.Order, handle string) providers.Outcome {
	requestID := strings.TrimSpace(handle)
	if requestID == "" {
		return c.checkDevice(ctx, o)
	}
	if c.box != nil {
		// A row checked after a restart may belong to an account not
		// registered again yet: its retried callbacks must still be taken.
		c.tokens.add(c.accountOf(o))
		key := checkKey(requestID, o)
		if d, ok := c.box.find(requestID, o); ok {
			c.forgetFirst(key)
			return d.outcome(o, requestID)
		}
		if d, ok := c.fromShared(ctx, requestID, o); ok {
			c.forgetFirst(key)
			return d.outcome(o, requestID)
		}
		if c.now().Sub(c.firstCheck(key)) < c.cfg.CallbackGrace {
			return providers.Outcome{Status: providers.Accepted, Handle: requestID}
		}
		out := c.poll(ctx, o, requestID)
		if out.Status != providers.Accepted {
			c.forgetFirst(key)
		}
		return out
	}
	return c.poll(ctx, o, requestID)
}

// checkDevice answers Check without a requestId (a row recovered after a
// crash, found by Lookup, has none): by the device's state in the list
// call. Accepted outcomes then have no Handle either.
func (c *Client) checkDevice(ctx context.Context, o providers.Order) providers.Outcome {
	sub, err := c.Lookup(ctx, o)
	switch {
	case err != nil:
		return providers.Outcome{Status: providers.Accepted, Err: providers.AsError(err)}
	case !sub.Found:
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code: providers.CodeNotFound, Message: "ThingSpace does not know the device", Retryable: true,
		}}
	}
	out := byDeviceState(sub, "", o)
	delete(out.Result, "request_id")
	return out
}

// byDeviceState turns what the device list says of a found device into an
// outcome: active is done, pre-active is still under way, suspended or
// deactivated is not what an activation leaves, and a state nobody
// documented is an unreadable answer rather than an eternal "pending".
func byDeviceState(sub providers.Subscription, requestID string, o providers.Order) providers.Outcome {
	switch {
	case sub.Pending:
		return providers.Outcome{Status: providers.Accepted, Handle: requestID}
	case sub.Active:
		ids := map[string]string{kindEID: sub.Identifiers["eid"], kindICCID: sub.Identifiers["iccid"],
			kindIMEI: sub.Identifiers["imei"], kindMDN: sub.Identifiers["msisdn"]}
		return succeeded(requestID, ids, o, map[string]string{"state": sub.State})
	case stateOf(sub.State) == stateUnknown:
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code: providers.CodeMalformed, Message: fmt.Sprintf("unreadable device state %q in the device list", truncate(sub.State)),
			Retryable: true, MaybeApplied: true,
		}}
	}
	return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
		Code: providers.CodeConflict, Message: "device is " + sub.State + " at ThingSpace",
	}}
}

func checkKey(requestID string, o providers.Order) string {
	return requestID + "|" + o.EID + "|" + o.ICCID
}

// firstCheck returns when the row was first checked, noting now if never.
func (c *Client) firstCheck(key string) time.Time {
	c.firstMu.Lock()
	defer c.firstMu.Unlock()
	t, ok := c.firstSeen[key]
	if !ok {
		t = c.now()
		c.firstSeen[key] = t
	}
	return t
}

func (c *Client) forgetFirst(key string) {
	c.firstMu.Lock()
	delete(c.firstSeen, key)
	c.firstMu.Unlock()
}

// poll asks the v2 request status call about the order's device. The
// answer may not list it (the reference page says bulk requests are not
// supported there, and its example names devices by ICCID alone): once the
// request has finished, the device list decides.
func (c *Client) poll(ctx context.Context, o providers.Order, requestID string) providers.Outcome {
	pending := func(e *providers.Error) providers.Outcome {
		return providers.Outcome{Status: providers.Accepted, Handle: requestID, Err: e}
	}
	failed := func(e *providers.Error) providers.Outcome {
		return providers.Outcome{Status: providers.Failed, Err: e}
	}
	u := c.url(pathAccountsV2 + url.PathEscape(c.accountOf(o)) + "/requests/" + url.PathEscape(requestID) + "/status")
	resp, err := c.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		// No answer: the request itself is not in doubt, and the
		// pipeline bounds the wait by its completion timeout.
		return pending(providers.TransportError(err))
	}
	if resp.Status != http.StatusOK {
		e := c.statusError(resp)
		if e.Retryable || resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden {
			return pending(e)
		}
		// The service does not know the request (or refuses the
		// question): the row ends here, but the device may have been
		// activated all the same, so look before sending it again.
		e.MaybeApplied = true
		return failed(e)
	}
	var rs requestStatus
	if err := json.Unmarshal(resp.Body, &rs); err != nil {
		return failed(c.unreadable(resp, "request status"))
	}
	for _, d := range rs.entries() {
		ids := idsOf(d.DeviceIDs)
		if !sameDevice(ids, o) {
			continue
		}
		switch statusOf(d.Status) {
		case statusSuccess:
			return succeeded(requestID, ids, o, map[string]string{"state": d.State})
		case statusFailed:
			return failed(&providers.Error{
				Code:    orDefault(c.redact(string(d.ErrorCode)), "activation_failed"),
				Message: orDefault(c.redact(d.ErrorMessage), "activation failed: ThingSpace status "+d.Status),
			})
		case statusPending:
			return pending(nil)
		}
		return failed(c.unreadable(resp, "request status"))
	}
	switch statusOf(rs.Status) {
	case statusPending:
		return pending(nil)
	case statusUnknown:
		return failed(c.unreadable(resp, "request status"))
	}
	return c.afterUnlisted(ctx, o, requestID)
}

// afterUnlisted decides a row whose finished request does not list its
// device, by what the device list holds.
func (c *Client) afterUnlisted(ctx context.Context, o providers.Order, requestID string) providers.Outcome {
	sub, err := c.Lookup(ctx, o)
	if err != nil {
		e := providers.AsError(err)
		if e.Code == providers.CodeMalformed {
			// About an accepted activation: bounded by the pipeline as
			// unreadable, never a silent "pending".
			cp := *e
			cp.MaybeApplied = true
			return providers.Outcome{Status: providers.Failed, Err: &cp}
		}
		return providers.Outcome{Status: providers.Accepted, Handle: requestID, Err: e}
	}
	if !sub.Found {
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code:         providers.CodeNotFound,
			Message:      "request " + requestID + " finished without listing the device, and the device list does not know it",
			Retryable:    true,
			MaybeApplied: true,
		}}
	}
	return byDeviceState(sub, requestID, o)
}

// Request and sub-request statuses as the status call reports them.
type statusKind int

const (
	statusUnknown statusKind = iota
	statusPending
	statusSuccess
	statusFailed
	statusFinished // request level only: some devices done, some not
)

// statusOf reads a status word of the status call, case and spacing
// aside. The reference page documents Success, Failed and Pending; the
// other words are accepted because services in the same family use them.
func statusOf(status string) statusKind {
	switch normalize(status) {
	case "pending", "inprogress", "queued", "processing", "submitted", "warning":
		return statusPending
	case "success", "succeeded", "completed", "complete":
		return statusSuccess
	case "failed", "failure", "error", "rejected":
		return statusFailed
	case "partialsuccess", "partial", "partiallycompleted":
		return statusFinished
	}
	return statusUnknown
}

// normalize lower-cases a word and drops spaces, dashes and underscores:
// "Pre-active", "pre active" and "PREACTIVE" read the same.
func normalize(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '_', '\t':
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// Device states as the device list reports them.
type stateKind int

const (
	stateUnknown stateKind = iota
	stateActive
	statePending
	stateInactive
)

// stateOf reads a device state. The SDK's CarrierInformation documents
// Activate, Suspend, Deactive and Pre-active; examples also show lower-case
// "active", and older answers "pending activation".
func stateOf(state string) stateKind {
	n := normalize(state)
	switch {
	case n == "active" || n == "activate" || n == "activated":
		return stateActive
	case n == "preactive" || strings.HasPrefix(n, "pending"):
		return statePending
	case n == "suspend" || n == "suspended" || n == "deactive" || n == "deactivate" || n == "deactivated" || n == "inactive":
		return stateInactive
	}
	return stateUnknown
}

// truncate cuts a provider's word for an error message.
func truncate(s string) string {
	if len(s) > maxQuoted {
		return s[:maxQuoted]
	}
	return s
}

// sameDevice reports whether ids name the order's device: by any of the
// identifiers both sides have (the status page's example names a device
// by ICCID alone, the SDK's by one id of any kind).
func sameDevice(ids map[string]string, o providers.Order) bool {
	for kind, v := range map[string]string{kindEID: o.EID, kindICCID: o.ICCID, kindIMEI: o.IMEI} {
		if v != "" && ids[kind] == v {
			return true
		}
	}
	return false
}

type verdictKind int

const (
	pendingVerdict verdictKind = iota
	done
	refused
)

// verdict reads a status (callback status or poll status) and, for
// callbacks, the euiccStatus: a failure in either is final; success needs
// the status to say so and the euiccStatus, when given, to agree.
func verdict(status, euicc string) verdictKind {
	s := strings.ToUpper(strings.TrimSpace(status))
	e := strings.ToUpper(strings.TrimSpace(euicc))
	failed := func(v string) bool {
		return strings.Contains(v, "FAIL") || strings.Contains(v, "ERROR") || strings.Contains(v, "REJECT")
	}
	switch {
	case strings.HasPrefix(s, "WARN"):
		// A slow device's first callback: success or failure follows.
		return pendingVerdict
	case failed(s) || failed(e):
		return refused
	case (s == "SUCCESS" || s == "SUCCEEDED" || s == "COMPLETED") && (e == "" || strings.HasSuffix(e, "SUCCESS")):
		return done
	}
	return pendingVerdict
}

// succeeded builds the Succeeded outcome from the ids the provider
// reported, falling back to the order's.
func succeeded(requestID string, ids map[string]string, o providers.Order, extra map[string]string) providers.Outcome {
	r := map[string]string{"request_id": requestID}
	put := func(k, v string) {
		if v != "" {
			r[k] = v
		}
	}
	put("eid", orDefault(ids[kindEID], o.EID))
	put("iccid", orDefault(ids[kindICCID], o.ICCID))
	put("imei", orDefault(ids[kindIMEI], o.IMEI))
	put("msisdn", ids[kindMDN])
	for k, v := range extra {
		put(k, v)
	}
	return providers.Outcome{Status: providers.Succeeded, Result: r}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Lookup asks the device list call what ThingSpace holds for the order's
// EID (or ICCID, or IMEI): Found=false when the list is empty or the
// answer is 404. The request names the device by deviceId {id, kind}, as
// the SDK's AccountDeviceListRequest does.
func (c *Client) Lookup(ctx context.Context, o providers.Order) (providers.Subscription, error) {
	var id *deviceID
	for _, d := range []deviceID{{Kind: kindEID, ID: o.EID}, {Kind: kindICCID, ID: o.ICCID}, {Kind: kindIMEI, ID: o.IMEI}} {
		if d.ID != "" {
			id = &d
			break
		}
	}
	if id == nil {
		return providers.Subscription{}, &providers.Error{Code: providers.CodeRejected, Message: "order has neither eid, iccid nor imei to look up"}
	}
	resp, err := c.do(ctx, http.MethodPost, c.url(pathList), listRequest{AccountName: c.accountOf(o), DeviceID: id})
	if err != nil {
		return providers.Subscription{}, providers.TransportError(err)
	}
	if resp.Status == http.StatusNotFound {
		return providers.Subscription{}, nil
	}
	if resp.Status != http.StatusOK {
		return providers.Subscription{}, c.statusError(resp)
	}
	var lr listResponse
	if err := json.Unmarshal(resp.Body, &lr); err != nil {
		e := c.unreadable(resp, "device list")
		e.MaybeApplied = false // a lookup changes nothing
		return providers.Subscription{}, e
	}
	for _, d := range lr.Devices {
		ids := idsOf(d.DeviceIDs)
		if sameDevice(ids, o) {
			return subscriptionOf(d, ids), nil
		}
	}
	return providers.Subscription{}, nil
}

// subscriptionOf reads a listed device. The SDK's ThingspaceDevice has no
// device-level state, only carrierInformations[].state; a device-level
// state is read first where an answer has one.
func subscriptionOf(d listedDevice, ids map[string]string) providers.Subscription {
	state := strings.TrimSpace(d.State)
	for _, ci := range d.CarrierInformations {
		if state != "" {
			break
		}
		state = strings.TrimSpace(ci.State)
	}
	kind := stateOf(state)
	sub := providers.Subscription{
		Found:       true,
		State:       state,
		Active:      kind == stateActive,
		Pending:     kind == statePending,
		Identifiers: map[string]string{},
	}
	for kind, name := range map[string]string{kindEID: "eid", kindICCID: "iccid", kindIMEI: "imei", kindMDN: "msisdn"} {
		if v := ids[kind]; v != "" {
			sub.Identifiers[name] = v
		}
	}
	return sub
}
