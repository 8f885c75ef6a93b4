package asavie

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"

	"github.com/simbulk/simbulk/providers/simkit"
)

// The simulator answers in one of two public forms (SimOptions.Forms); the
// client must read both. See the package doc for the sources.
//
//   - simkit.Documented (the default) is what the live API was captured
//     sending (GraphDefined/AsavieAPI, AsavieAPIClient.cs): every envelope
//     field present, "Meta": "", "ErrorDescription": "",
//     "ContinuationToken": "", "StatusUrl": null when there is none; a
//     StatusUrl of the form .../sims/{cli}/status?cmdid=<opaque,
//     percent-encoded>; unset SIMCard fields written as null; a duplicate
//     CLI answered HTTP 200 with Code 409.
//   - simkit.Alternate is the reference page's sample: Meta an object
//     ({"RequestId": "..."}), unset fields left out, a StatusUrl of the
//     form .../status/{id}; a duplicate CLI answered with the 409 in
//     ErrorCode only (HTTP 400, Code 400).

// reply writes env in the simulator's form.
func (s *Simulator) reply(w http.ResponseWriter, status int, env envelope) {
	if s.opts.Forms == simkit.Alternate {
		simkit.WriteJSON(w, status, env)
		return
	}
	simkit.WriteJSON(w, status, captured(env))
}

// newRequestID names a create request: an opaque base64 command id like
// the captured cmdid (with the +, / and = that must be percent-encoded),
// or a hex id in the alternate form.
func (s *Simulator) newRequestID() string {
	if s.opts.Forms == simkit.Alternate {
		return newID()
	}
	var b [49]byte // not a multiple of 3: the id ends in "=="
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// statusURL is the relative, already-encoded URL of a create request,
// escaped like Uri.EscapeDataString: "(+44)7700900123" becomes
// "%28%2B44%297700900123", so a client that encodes it again is caught.
func (s *Simulator) statusURL(account, cli, id string) string {
	sim := "/v1/accounts/" + escapeData(account) + "/hardware/sims/" + escapeData(cli)
	if s.opts.Forms == simkit.Alternate {
		return sim + "/status/" + id
	}
	return sim + "/status?cmdid=" + escapeData(id)
}

// meta is the Meta of a create request's answer: only the alternate form
// has an object to put the request id in.
func (s *Simulator) meta(id string) map[string]string {
	if s.opts.Forms == simkit.Alternate {
		return map[string]string{"RequestId": id}
	}
	return nil
}

// duplicate is the answer to a CLI that exists: "a failure result with a
// 409 error code", the 409 in Code (documented form) or in ErrorCode only
// (alternate form).
func (s *Simulator) duplicate(cli string) (int, envelope) {
	desc := "A SIM with CLI " + cli + " already exists."
	if s.opts.Forms == simkit.Alternate {
		return http.StatusBadRequest, failure(http.StatusBadRequest, http.StatusConflict, 0, desc)
	}
	return http.StatusOK, failure(http.StatusConflict, 3009, 0, desc)
}

// capturedEnvelope is the envelope as the live API was captured writing
// it: every field present, in the captured order.
type capturedEnvelope struct {
	Data              any     `json:"Data"`
	Success           bool    `json:"Success"`
	Code              int     `json:"Code"`
	ErrorCode         int     `json:"ErrorCode"`
	ErrorSubCode      int     `json:"ErrorSubCode"`
	ErrorDescription  string  `json:"ErrorDescription"`
	Meta              string  `json:"Meta"`
	StatusURL         *string `json:"StatusUrl"`
	ContinuationToken string  `json:"ContinuationToken"`
}

func captured(env envelope) capturedEnvelope {
	out := capturedEnvelope{
		Data: capturedData(env.Data), Success: env.Success, Code: env.Code,
		ErrorCode: env.ErrorCode, ErrorSubCode: env.ErrorSubCode, ErrorDescription: env.ErrorDescription,
	}
	if env.StatusURL != "" {
		u := env.StatusURL
		out.StatusURL = &u
	}
	return out
}

func capturedData(d any) any {
	switch d := d.(type) {
	case SIMCard:
		return capturedSIM(d)
	case RequestStatus:
		return capturedRequest(d)
	}
	return d
}

// capturedCard is a SIMCard as captured: unset text fields null, Hints
// (which the simulator does not keep) null.
type capturedCard struct {
	CLI               string            `json:"CLI"`
	SIMNumber         *string           `json:"SIMNumber"`
	Description       *string           `json:"Description"`
	InventoryRef      *string           `json:"InventoryRef"`
	State             SIMState          `json:"State"`
	Version           int               `json:"Version"`
	ActorStatus       ActorStatus       `json:"ActorStatus"`
	ForeignAttributes map[string]string `json:"ForeignAttributes"`
	Tariff            *string           `json:"Tariff"`
	Bundle            *string           `json:"Bundle"`
	Operator          *string           `json:"Operator"`
	Hints             *struct{}         `json:"Hints"`
	NetworkStatus     NetworkStatus     `json:"NetworkStatus"`
	Created           *string           `json:"Created"`
	SOC               *string           `json:"SOC"`
	InternalSOC       *string           `json:"InternalSOC"`
	PurchaseOrder     *string           `json:"PurchaseOrder"`
	Provider          *string           `json:"Provider"`
	ProviderTariff    *string           `json:"ProviderTariff"`
	ProviderPrice     *string           `json:"ProviderPrice"`
	ProviderStartDate *string           `json:"ProviderStartDate"`
}

func capturedSIM(c SIMCard) capturedCard {
	return capturedCard{
		CLI: c.CLI, SIMNumber: orNull(c.SIMNumber), Description: orNull(c.Description), InventoryRef: orNull(c.InventoryRef),
		State: c.State, Version: c.Version, ActorStatus: c.ActorStatus, ForeignAttributes: c.ForeignAttributes,
		Tariff: orNull(c.Tariff), Bundle: orNull(c.Bundle), Operator: orNull(c.Operator), NetworkStatus: c.NetworkStatus,
		Created: orNull(c.Created), SOC: orNull(c.SOC), InternalSOC: orNull(c.InternalSOC), PurchaseOrder: orNull(c.PurchaseOrder),
		Provider: orNull(c.Provider), ProviderTariff: orNull(c.ProviderTariff), ProviderPrice: orNull(c.ProviderPrice),
		ProviderStartDate: orNull(c.ProviderStartDate),
	}
}

// capturedStatus is the request status in the documented form's style.
// Its shape is simbulk's guess either way (see RequestStatus); only the
// null-for-unset habit is the captured API's.
type capturedStatus struct {
	ID        string        `json:"Id"`
	Operation *string       `json:"Operation"`
	Status    flexText      `json:"Status"`
	Created   *string       `json:"Created"`
	Updated   *string       `json:"Updated"`
	SIMCard   *capturedCard `json:"SIMCard"`
}

func capturedRequest(r RequestStatus) capturedStatus {
	out := capturedStatus{ID: r.ID, Operation: orNull(r.Operation), Status: r.Status, Created: orNull(r.Created), Updated: orNull(r.Updated)}
	if r.SIMCard != nil {
		c := capturedSIM(*r.SIMCard)
		out.SIMCard = &c
	}
	return out
}

// orNull is s, or nil (written null) when s is empty.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
