package thingspace

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

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
		key := checkKey(requestID, o)
		if d, ok := c.box.find(requestID, o); ok {
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
	case sub.Pending:
		return providers.Outcome{Status: providers.Accepted}
	case !sub.Active:
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code: providers.CodeConflict, Message: "device is " + sub.State + " at ThingSpace",
		}}
	}
	ids := map[string]string{kindEID: sub.Identifiers["eid"], kindICCID: sub.Identifiers["iccid"],
		kindIMEI: sub.Identifiers["imei"], kindMDN: sub.Identifiers["msisdn"]}
	out := succeeded("", ids, o, map[string]string{"state": sub.State})
	delete(out.Result, "request_id")
	return out
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

// poll asks the v2 request status call about the order's device.
func (c *Client) poll(ctx context.Context, o providers.Order, requestID string) providers.Outcome {
	pending := func(e *providers.Error) providers.Outcome {
		return providers.Outcome{Status: providers.Accepted, Handle: requestID, Err: e}
	}
	u := c.url(pathAccountsV2 + url.PathEscape(c.accountOf(o)) + "/requests/" + url.PathEscape(requestID) + "/status")
	resp, err := c.m2m.Do(ctx, http.MethodGet, u, nil)
	if err != nil {
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
		return providers.Outcome{Status: providers.Failed, Err: e}
	}
	var rs requestStatus
	if err := json.Unmarshal(resp.Body, &rs); err != nil {
		return pending(malformed(resp, "request status", err))
	}
	for _, d := range rs.Devices {
		ids := idsOf(d.DeviceIDs)
		if !sameDevice(ids, o) {
			continue
		}
		switch verdict(d.Status, "") {
		case done:
			return succeeded(requestID, ids, o, map[string]string{"state": d.State})
		case refused:
			return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
				Code:    orDefault(c.redact(string(d.ErrorCode)), "activation_failed"),
				Message: orDefault(c.redact(d.ErrorMessage), "activation failed: status "+d.Status),
			}}
		}
		return pending(nil)
	}
	if !requestFinished(rs.Status) {
		return pending(nil)
	}
	return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
		Code: providers.CodeNotFound, Message: "device not listed in finished request " + requestID, MaybeApplied: true,
	}}
}

// requestFinished reads the request-level status of the status call.
func requestFinished(status string) bool {
	switch strings.ToLower(strings.Join(strings.Fields(status), "")) {
	case "", "pending", "inprogress", "queued", "processing", "submitted":
		return false
	}
	return true
}

// sameDevice reports whether ids name the order's device: by EID, or by
// ICCID when either side has no EID.
func sameDevice(ids map[string]string, o providers.Order) bool {
	if o.EID != "" && ids[kindEID] != "" {
		return ids[kindEID] == o.EID
	}
	return o.ICCID != "" && ids[kindICCID] == o.ICCID
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
// EID (or ICCID): Found=false when the list is empty or the answer is 404.
func (c *Client) Lookup(ctx context.Context, o providers.Order) (providers.Subscription, error) {
	id := &deviceID{Kind: kindEID, ID: o.EID}
	if o.EID == "" {
		id = &deviceID{Kind: kindICCID, ID: o.ICCID}
	}
	if id.ID == "" {
		return providers.Subscription{}, &providers.Error{Code: providers.CodeRejected, Message: "order has neither eid nor iccid to look up"}
	}
	resp, err := c.m2m.Do(ctx, http.MethodPost, c.url(pathList), listRequest{AccountName: c.accountOf(o), DeviceID: id})
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
		e := malformed(resp, "device list", err)
		e.MaybeApplied = false // a lookup changes nothing
		return providers.Subscription{}, e
	}
	for _, d := range lr.Devices {
		ids := idsOf(d.DeviceIDs)
		if !sameDevice(ids, o) {
			continue
		}
		state := d.State
		if state == "" && len(d.CarrierInformations) > 0 {
			state = d.CarrierInformations[0].State
		}
		st := strings.ToLower(strings.TrimSpace(state))
		sub := providers.Subscription{
			Found:       true,
			State:       state,
			Active:      st == "active",
			Pending:     strings.HasPrefix(st, "pending"),
			Identifiers: map[string]string{},
		}
		for kind, name := range map[string]string{kindEID: "eid", kindICCID: "iccid", kindIMEI: "imei", kindMDN: "msisdn"} {
			if v := ids[kind]; v != "" {
				sub.Identifiers[name] = v
			}
		}
		return sub, nil
	}
	return providers.Subscription{}, nil
}
