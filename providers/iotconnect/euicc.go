package iotconnect

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/simbulk/simbulk/providers"
)

// subscriptionIDPattern is what the documents mean by their IoT
// subscription id regex ^[85,97]{2}[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{16}$:
// a character class where an alternation was meant (the class would also
// admit "58", "9,", ",,"...). Ids start 85 or 97, then 16 characters of
// Crockford-like base 32 without 0, 1, I and O.
var subscriptionIDPattern = regexp.MustCompile(`^(85|97)[2-9A-HJ-NP-Z]{16}$`)

// ValidSubscriptionID reports whether id is an IoT subscription id as the
// documents intend it.
func ValidSubscriptionID(id string) bool { return subscriptionIDPattern.MatchString(id) }

// euiccView is what the client needs to know of an eUICC, from the eUICC
// resource and, where that did not embed them, its IoT subscription.
type euiccView struct {
	agreementID    string
	subscriptionID string
	imsi           string
	iccid          string
	msisdn         string
	mode           string
}

// ready: the IoT subscription exists and its connectivity subscription says
// in which mode, which is what a finished registration looks like.
func (v euiccView) ready() bool { return v.subscriptionID != "" && v.mode != "" }

func (v euiccView) identifiers(eid string) map[string]string {
	return nonEmpty(map[string]string{"eid": eid, "iccid": v.iccid, "imsi": v.imsi, "msisdn": v.msisdn})
}

// outcome is the Check answer for the view: Succeeded with the identifiers
// and mode once ready, else Accepted with the EID as handle.
func (v euiccView) outcome(eid string) providers.Outcome {
	result := v.identifiers(eid)
	if !v.ready() {
		return providers.Outcome{Status: providers.Accepted, Handle: eid, Result: result}
	}
	result["subscription_id"] = v.subscriptionID
	result["mode"] = v.mode
	return providers.Outcome{Status: providers.Succeeded, Result: result}
}

// readEUICC GETs /euiccs/{eid} with the IoT subscription, profiles and
// connectivity subscriptions embedded. found is false on 404. When the
// answer names the IoT subscription but does not embed its connectivity
// subscription, the subscription is read as well.
func (c *Client) readEUICC(ctx context.Context, eid string) (v euiccView, found bool, err error) {
	u := c.base + euiccsPath + "/" + url.PathEscape(eid) + "?include=" + euiccInclude
	resp, err := c.caller.Do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return v, false, providers.AsError(err)
	}
	if resp.Status == http.StatusNotFound {
		return v, false, nil
	}
	if resp.Status < 200 || resp.Status >= 300 {
		return v, false, c.readError(resp)
	}
	var res euiccResource
	if err := json.Unmarshal(resp.Body, &res); err != nil {
		return v, false, readMalformed(resp.Status, "eUICC", err)
	}
	v.agreementID = res.Attributes.EUICCAgreementID
	rel := res.Relationships
	if rel.IoTSubscription != nil {
		if a := rel.IoTSubscription.Attributes; a != nil && a.ID != "" {
			v.subscriptionID = a.ID
		} else {
			v.subscriptionID = lastSegment(rel.IoTSubscription.URL)
		}
	}
	v.pickConnectivity(connectivityOf(rel.ConnectivitySubscriptions), res.Attributes.EnabledProfile)
	if v.subscriptionID != "" && v.mode == "" {
		// The server's own id: it judges it, not our reading of its pattern.
		sub, ok, err := c.readSubscription(ctx, v.subscriptionID)
		if err != nil {
			return v, true, err
		}
		if ok {
			v.pickConnectivity(sub.Connectivity, res.Attributes.EnabledProfile)
		}
	}
	return v, true, nil
}

// pickConnectivity takes the connectivity subscription of the enabled
// profile, or the first one, if any.
func (v *euiccView) pickConnectivity(cs []Connectivity, enabledICCID string) {
	if len(cs) == 0 {
		return
	}
	pick := cs[0]
	for _, c := range cs {
		if enabledICCID != "" && c.ICCID == enabledICCID {
			pick = c
			break
		}
	}
	v.imsi, v.iccid, v.msisdn, v.mode = pick.IMSI, pick.ICCID, pick.MSISDN, pick.Mode
}

// Connectivity is a connectivity subscription: the identifiers a profile
// is reachable by, and its mode (ACTIVE, PAUSED, ...).
type Connectivity struct {
	IMSI   string
	ICCID  string
	MSISDN string
	Mode   string
}

// connectivityOf keeps the connectivity subscriptions whose attributes
// were embedded; a bare URL says nothing about identifiers or mode.
func connectivityOf(links []link[connectivityAttributes]) []Connectivity {
	var cs []Connectivity
	for _, l := range links {
		if a := l.Attributes; a != nil {
			cs = append(cs, Connectivity{IMSI: a.IMSI, ICCID: a.ICCID, MSISDN: a.MSISDN, Mode: a.Mode})
		}
	}
	return cs
}

// IoTSubscription is an IoT subscription as GET /iot-subscriptions/{id}
// with everything included describes it.
type IoTSubscription struct {
	ID       string
	DomainID string
	EIDs     []string
	ICCIDs   []string // of its profiles
	// Connectivity holds its connectivity subscriptions whose attributes
	// were included.
	Connectivity []Connectivity
}

// IoTSubscription reads an IoT subscription with its eUICCs, profiles and
// connectivity subscriptions included. found is false on 404. An id that
// does not match the documented pattern is refused without a request.
func (c *Client) IoTSubscription(ctx context.Context, id string) (sub IoTSubscription, found bool, err error) {
	if !ValidSubscriptionID(id) {
		return IoTSubscription{}, false, &providers.Error{Code: providers.CodeRejected, Message: "IoT subscription id " + strconv.Quote(id) + " does not match ^(85|97)[2-9A-HJ-NP-Z]{16}$"}
	}
	return c.readSubscription(ctx, id)
}

func (c *Client) readSubscription(ctx context.Context, id string) (sub IoTSubscription, found bool, err error) {
	u := c.base + subscriptionsPath + "/" + url.PathEscape(id) + "?include=" + subscriptionInclude
	resp, err := c.caller.Do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return sub, false, providers.AsError(err)
	}
	if resp.Status == http.StatusNotFound {
		return sub, false, nil
	}
	if resp.Status < 200 || resp.Status >= 300 {
		return sub, false, c.readError(resp)
	}
	var res subscriptionResource
	if err := json.Unmarshal(resp.Body, &res); err != nil {
		return sub, false, readMalformed(resp.Status, "IoT subscription", err)
	}
	sub.ID = res.Attributes.ID
	if sub.ID == "" {
		sub.ID = id
	}
	if res.Attributes.Domain != nil {
		sub.DomainID = res.Attributes.Domain.DomainID
	}
	for _, e := range res.Relationships.EUICCs {
		if e.Attributes != nil && e.Attributes.EID != "" {
			sub.EIDs = append(sub.EIDs, e.Attributes.EID)
		} else if s := lastSegment(e.URL); s != "" {
			sub.EIDs = append(sub.EIDs, s)
		}
	}
	for _, p := range res.Relationships.Profiles {
		if p.Attributes != nil && p.Attributes.ICCID != "" {
			sub.ICCIDs = append(sub.ICCIDs, p.Attributes.ICCID)
		} else if s := lastSegment(p.URL); s != "" {
			sub.ICCIDs = append(sub.ICCIDs, s)
		}
	}
	sub.Connectivity = connectivityOf(res.Relationships.ConnectivitySubscriptions)
	return sub, true, nil
}

// readError classifies a failed GET. A read has no effect at the
// provider, so nothing about it is "maybe applied".
func (c *Client) readError(resp *providers.Response) *providers.Error {
	e := c.statusError(resp)
	e.MaybeApplied = false
	return e
}

func readMalformed(status int, what string, err error) *providers.Error {
	e := providers.MalformedError(status, what, err)
	e.MaybeApplied = false
	return e
}

// lastSegment is the id at the end of a relationship URL.
func lastSegment(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	s := path.Base(u)
	if s == "." || s == "/" {
		return ""
	}
	if un, err := url.PathUnescape(s); err == nil {
		return un
	}
	return s
}
