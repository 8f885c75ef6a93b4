package iotconnect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/simbulk/simbulk/ingest/checkdigit"
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
	enabledProfile string
	// agreementID is set only by answers in the alternate form: get-e-uicc
	// does not document it.
	agreementID string
	// hasSubscription: the eUICC names its IoT subscription, whose id may
	// still be unknown when the answer gave neither id nor URL.
	hasSubscription bool
	subscriptionID  string
	imsi            string
	iccid           string
	msisdn          string
	// mode is empty unless an answer carried it: embedded attributes hold
	// only the properties marked required, and mode may not be one.
	mode string
	// subscriptionRead: the IoT subscription resource has been read once
	// already for this view; reading it again would say nothing new.
	subscriptionRead bool
}

// ready is the evidence of a completed registration: the IoT subscription
// is there, with a connectivity subscription or profile that names an IMSI
// or ICCID. The mode is not waited for; it may never be embedded.
func (v euiccView) ready() bool { return v.hasSubscription && (v.imsi != "" || v.iccid != "") }

func (v euiccView) identifiers(eid string) map[string]string {
	return nonEmpty(map[string]string{"eid": eid, "iccid": v.iccid, "imsi": v.imsi, "msisdn": v.msisdn})
}

// outcome is the Check answer for the view: Succeeded with the identifiers
// (and the subscription id and mode where known) once ready, else Accepted
// with the EID as handle.
func (v euiccView) outcome(eid string) providers.Outcome {
	result := v.identifiers(eid)
	if !v.ready() {
		return providers.Outcome{Status: providers.Accepted, Handle: eid, Result: result}
	}
	if v.subscriptionID != "" {
		result["subscription_id"] = v.subscriptionID
	}
	if v.mode != "" {
		result["mode"] = v.mode
	}
	return providers.Outcome{Status: providers.Succeeded, Result: result}
}

// conflict says why the eUICC found is not the order's, or "" when nothing
// the provider showed contradicts the row. A registered eUICC is ours
// unless shown otherwise: absent fields never make a conflict, because the
// documented answer carries no agreement at all and embeds only required
// properties.
func (v euiccView) conflict(o providers.Order) string {
	if o.ICCID != "" && v.enabledProfile != "" && !sameICCID(o.ICCID, v.enabledProfile) {
		return fmt.Sprintf("EID %s has profile %s enabled, not the row's ICCID %s", o.EID, v.enabledProfile, o.ICCID)
	}
	if want := o.Fields["euicc_agreement_id"]; want != "" && v.agreementID != "" && v.agreementID != want {
		return fmt.Sprintf("EID %s is registered under another eUICC agreement (%s), not %s", o.EID, v.agreementID, want)
	}
	return ""
}

// sameICCID compares ICCIDs of which one may lack its Luhn check digit:
// manifests carry both the 19- and the 20-digit form of the same card.
func sameICCID(a, b string) bool {
	if a == b {
		return true
	}
	if len(a) < len(b) {
		a, b = b, a
	}
	return len(a) == len(b)+1 && strings.HasPrefix(a, b) && checkdigit.LuhnValid(a)
}

// readEUICC GETs /euiccs/{eid} with the IoT subscription, profiles and
// connectivity subscriptions embedded. found is false on 404. When the
// answer names the IoT subscription but embeds no IMSI or ICCID, the
// subscription is read as well.
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
		return v, false, c.unreadable(resp, "eUICC answer", err)
	}
	switch a := res.Attributes; {
	case a == nil:
		return v, false, c.unreadable(resp, "eUICC answer", errors.New("no attributes"))
	case a.EID != "" && a.EID != eid:
		return v, false, c.unreadable(resp, "eUICC answer", fmt.Errorf("it describes EID %s", a.EID))
	}
	v.enabledProfile = res.Attributes.EnabledProfile
	v.agreementID = res.Attributes.EUICCAgreementID
	rel := res.Relationships
	if rel.IoTSubscription != nil {
		v.hasSubscription = true
		if a := rel.IoTSubscription.Attributes; a != nil && a.ID != "" {
			v.subscriptionID = a.ID
		} else {
			v.subscriptionID = lastSegment(rel.IoTSubscription.URL)
		}
	}
	v.pickConnectivity(connectivityOf(rel.ConnectivitySubscriptions))
	if v.iccid == "" && v.imsi == "" {
		v.pickProfile(rel.Profiles)
	}
	if !v.hasSubscription || v.ready() {
		return v, true, nil
	}
	if v.subscriptionID == "" {
		// The subscription exists, but nothing says where: no later look
		// at this answer can tell more.
		return v, true, c.unreadable(resp, "eUICC answer", errors.New("iotSubscription has neither id nor url"))
	}
	return v, true, c.readMode(ctx, &v)
}

// readMode reads the eUICC's IoT subscription with its connectivity
// subscriptions (get-subscription) for what the eUICC answer did not embed:
// identifiers and mode. A subscription not found (yet) leaves v as it is.
func (c *Client) readMode(ctx context.Context, v *euiccView) error {
	// The server's own id: it judges it, not our reading of its pattern.
	sub, ok, err := c.readSubscription(ctx, v.subscriptionID, modeInclude)
	v.subscriptionRead = true
	if err != nil || !ok {
		return err
	}
	v.pickConnectivity(sub.Connectivity)
	return nil
}

// pickConnectivity takes the connectivity subscription of the view's
// profile (the one it already knows, else the enabled one), or the first,
// and fills in what the view lacks.
func (v *euiccView) pickConnectivity(cs []Connectivity) {
	if len(cs) == 0 {
		return
	}
	pick := cs[0]
	for _, c := range cs {
		if v.matches(c) {
			pick = c
			break
		}
	}
	fill(&v.imsi, pick.IMSI)
	fill(&v.iccid, pick.ICCID)
	fill(&v.msisdn, pick.MSISDN)
	fill(&v.mode, pick.Mode)
}

// matches: c is the connectivity subscription of the profile the view has
// identified already, or else of the enabled profile.
func (v *euiccView) matches(c Connectivity) bool {
	switch {
	case v.imsi != "" || v.iccid != "":
		return (v.imsi != "" && c.IMSI == v.imsi) || (v.iccid != "" && c.ICCID != "" && sameICCID(c.ICCID, v.iccid))
	case v.enabledProfile != "":
		return c.ICCID != "" && sameICCID(c.ICCID, v.enabledProfile)
	}
	return false
}

// pickProfile takes the ICCID of the enabled profile, or of the first
// profile whose attributes were embedded.
func (v *euiccView) pickProfile(ps []link[profileAttributes]) {
	for _, p := range ps {
		a := p.Attributes
		if a == nil || a.ICCID == "" {
			continue
		}
		enabled := (a.IsEnabled != nil && *a.IsEnabled) || (v.enabledProfile != "" && sameICCID(a.ICCID, v.enabledProfile))
		if v.iccid == "" || enabled {
			v.iccid = a.ICCID
		}
		if enabled {
			return
		}
	}
}

func fill(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// Connectivity is a connectivity subscription: the identifiers a profile
// is reachable by, and its mode (ACTIVE, PAUSED, ...) when the answer
// carried it.
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
	return c.readSubscription(ctx, id, subscriptionInclude)
}

func (c *Client) readSubscription(ctx context.Context, id, include string) (sub IoTSubscription, found bool, err error) {
	u := c.base + subscriptionsPath + "/" + url.PathEscape(id) + "?include=" + include
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
		return sub, false, c.unreadable(resp, "IoT subscription answer", err)
	}
	if res.Attributes == nil {
		return sub, false, c.unreadable(resp, "IoT subscription answer", errors.New("no attributes"))
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
