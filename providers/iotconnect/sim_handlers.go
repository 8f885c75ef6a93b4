package iotconnect

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/simbulk/simbulk/providers/simkit"
)

// The documented request rules.
var (
	eidPattern    = regexp.MustCompile(`^[0-9]{32}$`)
	domainPattern = regexp.MustCompile(`^([A-Za-z0-9]{8}-){0,6}[A-Za-z0-9]{8}$`)
)

// Error codes the simulator answers with. The documents show the envelope
// only; these names follow its shape (see doc.go).
const (
	errRequired     = "REQUIRED"
	errFormat       = "INVALID_FORMAT"
	errValue        = "INVALID_VALUE"
	errBody         = "INVALID_BODY"
	errEUICCMissing = "EUICC_NOT_FOUND"
	errSubMissing   = "SUBSCRIPTION_NOT_FOUND"
)

// validateRegistration applies the documented body rules and returns every
// violation, each with the path of the field.
func validateRegistration(reg Registration) []envelopeError {
	var errs []envelopeError
	add := func(path, code, msg string) {
		errs = append(errs, envelopeError{Message: msg, ErrorCode: code, Path: path})
	}
	switch {
	case reg.EID == "":
		add("eid", errRequired, "eid is required")
	case !eidPattern.MatchString(reg.EID):
		add("eid", errFormat, "eid must match ^[0-9]{32}$")
	}
	switch {
	case reg.CMP == "":
		add("cmp", errRequired, "cmp is required")
	case !slices.Contains(cmpValues, reg.CMP):
		add("cmp", errValue, "cmp must be one of "+strings.Join(cmpValues, ", "))
	}
	if reg.DomainID != "" && !domainPattern.MatchString(reg.DomainID) {
		add("domainId", errFormat, "domainId must match ^([A-Za-z0-9]{8}-){0,6}[A-Za-z0-9]{8}$")
	}
	if reg.EUICCAgreementID == "" {
		add("euiccAgreementId", errRequired, "euiccAgreementId is required")
	}
	if reg.LocaleID == "" {
		add("localeId", errRequired, "localeId is required")
	}
	return errs
}

// handleRegister is POST /euiccs: validate, refuse a known EID, else store
// the registration (visible at once, its subscription after AsyncDelay)
// and answer 202 with the assigned identifiers.
func (s *Simulator) handleRegister(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	var reg Registration
	if err := json.NewDecoder(r.Body).Decode(&reg); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "The request body is not valid JSON",
			envelopeError{Message: "body must be a JSON object with eid, cmp, domainId, euiccAgreementId, localeId", ErrorCode: errBody})
		return
	}
	if reg.EID != "" {
		s.kit.Provisioned(reg.EID)
	}
	if errs := validateRegistration(reg); len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "BadRequest", "Request validation failed", errs...)
		return
	}
	now := s.opts.Now()
	s.mu.Lock()
	if s.byEID[reg.EID] != nil {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "BadRequest", "eUICC is already registered",
			envelopeError{Message: "an eUICC with this EID is already registered", ErrorCode: CodeAlreadyRegistered, Path: "eid"})
		return
	}
	rec := s.register(reg, now, s.opts.AsyncDelay)
	answer := registered{IMSI: rec.imsi, ICCID: rec.iccid, MSISDN: rec.msisdn}
	s.mu.Unlock()
	simkit.WriteJSON(w, http.StatusAccepted, answer)
}

// handleGetEUICC is GET /euiccs/{eid}?include=….
func (s *Simulator) handleGetEUICC(w http.ResponseWriter, r *http.Request) {
	eid := r.PathValue("eid")
	if !eidPattern.MatchString(eid) {
		writeError(w, http.StatusBadRequest, "BadRequest", "Request validation failed",
			envelopeError{Message: "eid must match ^[0-9]{32}$", ErrorCode: errFormat, Path: "eid"})
		return
	}
	inc, ok := includes(w, r, "iotSubscription", "profiles", "connectivitySubscriptions")
	if !ok {
		return
	}
	now := s.opts.Now()
	s.mu.Lock()
	var rc record
	found := s.byEID[eid] != nil
	if found {
		rc = *s.byEID[eid]
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "NotFound", "The specified resource was not found",
			envelopeError{Message: "no eUICC with this EID", ErrorCode: errEUICCMissing, Path: "eid"})
		return
	}
	simkit.WriteJSON(w, http.StatusOK, rc.euiccResource(now, inc, s.opts.Forms))
}

// handleGetSubscription is the documented GET /iot-subscriptions/{id}.
// The id is checked against the documents' intended pattern.
func (s *Simulator) handleGetSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ValidSubscriptionID(id) {
		writeError(w, http.StatusBadRequest, "BadRequest", "Request validation failed",
			envelopeError{Message: "id must match ^(85|97)[2-9A-HJ-NP-Z]{16}$", ErrorCode: errFormat, Path: "id"})
		return
	}
	inc, ok := includes(w, r, "euiccs", "profiles", "connectivitySubscriptions")
	if !ok {
		return
	}
	now := s.opts.Now()
	s.mu.Lock()
	var rc record
	rec := s.byEID[s.bySub[id]]
	found := rec != nil && rec.ready(now)
	if found {
		rc = *rec
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "NotFound", "The specified resource was not found",
			envelopeError{Message: "no IoT subscription with this id", ErrorCode: errSubMissing, Path: "id"})
		return
	}
	simkit.WriteJSON(w, http.StatusOK, rc.subscriptionResource(inc))
}

// includes reads include= (a comma-separated list, possibly repeated) and
// answers 400 for a value the resource does not have.
func includes(w http.ResponseWriter, r *http.Request, allowed ...string) (map[string]bool, bool) {
	set := map[string]bool{}
	for _, v := range r.URL.Query()["include"] {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if !slices.Contains(allowed, part) {
				writeError(w, http.StatusBadRequest, "BadRequest", "Request validation failed",
					envelopeError{Message: "include must be a list of " + strings.Join(allowed, ", "), ErrorCode: errValue, Path: "include"})
				return nil, false
			}
			set[part] = true
		}
	}
	return set, true
}

// euiccResource is the get-e-uicc answer in the given form. Documented:
// the eUICC's attributes are eid, enabledProfile and bootstrapProfile only,
// and embedded relationship attributes hold only properties marked
// required ("If present, the attributes property will only contain
// properties marked as required"), so no connectivity subscription shows
// its mode. Alternate: embedded attributes are complete and the eUICC's
// attributes carry its euiccAgreementId as well.
func (rc *record) euiccResource(now time.Time, inc map[string]bool, forms simkit.Forms) euiccResource {
	full := forms == simkit.Alternate
	attrs := &euiccAttributes{EID: rc.reg.EID}
	if full {
		attrs.EUICCAgreementID = rc.reg.EUICCAgreementID
	}
	res := euiccResource{
		Attributes: attrs,
		Relationships: euiccRelationships{
			Profiles:                  []link[profileAttributes]{},
			ConnectivitySubscriptions: []link[connectivityAttributes]{},
		},
	}
	if !rc.ready(now) {
		return res
	}
	attrs.EnabledProfile = rc.iccid
	attrs.BootstrapProfile = rc.iccid
	sub := link[subscriptionAttributes]{URL: subscriptionsPath + "/" + rc.subID}
	if inc["iotSubscription"] {
		a := subscriptionAttributes{ID: rc.subID}
		if full {
			a = rc.subscriptionAttributes()
		}
		sub.Attributes = &a
	}
	res.Relationships.IoTSubscription = &sub
	res.Relationships.Profiles = []link[profileAttributes]{rc.profileLink(inc["profiles"], full)}
	res.Relationships.ConnectivitySubscriptions = []link[connectivityAttributes]{rc.connectivityLink(inc["connectivitySubscriptions"], full)}
	return res
}

// subscriptionResource is the get-subscription answer: its own attributes
// and whatever include= names, complete (the mode included) in both forms,
// which is where a client that needs the mode reads it.
func (rc *record) subscriptionResource(inc map[string]bool) subscriptionResource {
	eu := link[euiccAttributes]{URL: euiccsPath + "/" + rc.reg.EID}
	if inc["euiccs"] {
		eu.Attributes = &euiccAttributes{EID: rc.reg.EID, EnabledProfile: rc.iccid, BootstrapProfile: rc.iccid}
	}
	attrs := rc.subscriptionAttributes()
	return subscriptionResource{
		Attributes: &attrs,
		Relationships: subscriptionRelationships{
			EUICCs:                    []link[euiccAttributes]{eu},
			Profiles:                  []link[profileAttributes]{rc.profileLink(inc["profiles"], true)},
			ConnectivitySubscriptions: []link[connectivityAttributes]{rc.connectivityLink(inc["connectivitySubscriptions"], true)},
		},
	}
}

func (rc *record) subscriptionAttributes() subscriptionAttributes {
	return subscriptionAttributes{
		ID:               rc.subID,
		SubscriptionType: "IOT_CONNECT",
		Domain:           &domainRef{DomainID: rc.reg.DomainID},
		Metadata:         map[string]string{},
	}
}

// profileLink is the profile relationship: its URL, and its attributes
// when included. Short, the attributes are the ones get-profile marks
// required (iccid, profileType); full, they are all of them.
func (rc *record) profileLink(withAttributes, full bool) link[profileAttributes] {
	l := link[profileAttributes]{URL: profilesPath + "/" + rc.iccid}
	if !withAttributes {
		return l
	}
	l.Attributes = &profileAttributes{ICCID: rc.iccid, ProfileType: "VIRTUAL_PROFILE"}
	if full {
		cp := &connectivityProfile{ID: "GLOBAL_SUBSCRIPTION", Name: "Global subscription"}
		if rc.reg.CMP == "ARQIA_BR" {
			cp = &connectivityProfile{ID: "BR_DATORA", Name: "Brazil Datora"}
		}
		enabled := true
		l.Attributes.IsEnabled = &enabled
		l.Attributes.CMP = rc.reg.CMP
		l.Attributes.ConnectivityProfile = cp
	}
	return l
}

// connectivityLink is the connectivity subscription relationship: its
// URL, and its attributes when included. Short, they are the identifiers
// only (whether mode is marked required is not visible, so the documented
// form assumes the worst); full, they add mode and firstActivationDate.
func (rc *record) connectivityLink(withAttributes, full bool) link[connectivityAttributes] {
	l := link[connectivityAttributes]{URL: connectivityPath + "/" + rc.imsi}
	if !withAttributes {
		return l
	}
	l.Attributes = &connectivityAttributes{IMSI: rc.imsi, ICCID: rc.iccid, MSISDN: rc.msisdn}
	if full {
		l.Attributes.Mode = rc.mode
		l.Attributes.FirstActivationDate = rc.readyAt.UTC().Format(time.RFC3339)
	}
	return l
}
