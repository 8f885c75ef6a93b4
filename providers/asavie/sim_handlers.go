package asavie

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// The simulator's API handlers: the checks in front of every call, SIM
// creation, request status and SIM lookup. The token endpoint is
// simkit.Tokens (see NewSimulator).

func failure(code, errorCode, subCode int, desc string) envelope {
	return envelope{Code: code, ErrorCode: errorCode, ErrorSubCode: subCode, ErrorDescription: desc}
}

// api puts the bearer-token and Accept checks in front of an API handler.
func (s *Simulator) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.tokens.Check(r) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			s.reply(w, http.StatusUnauthorized, failure(http.StatusUnauthorized, 4010, 0,
				"Authorization has been denied for this request."))
			return
		}
		if !acceptsJSON(r.Header.Get("Accept")) {
			s.reply(w, http.StatusNotAcceptable, failure(http.StatusNotAcceptable, 1406, 0,
				"This simulator answers application/json only."))
			return
		}
		h(w, r)
	}
}

// acceptsJSON reads an Accept header: absent, or any range that covers
// application/json or text/json.
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json", "text/json", "application/*", "text/*", "*/*":
			return true
		}
	}
	return false
}

// cliPattern is the docs' CLI regex, as written.
var cliPattern = regexp.MustCompile(`^(?<msisdn>\(\+*(\d{1,5})\)(\d{5,16}))$|^(?<imsi>\d{14,16})$`)

var simNumberPattern = regexp.MustCompile(`^\d{18,22}$`)

// Maximum lengths of the optional text fields, with the sub-code each
// reports.
var fieldLimits = []struct {
	name string
	max  int
	get  func(*SIMCard) string
}{
	{"Description", 255, func(c *SIMCard) string { return c.Description }},
	{"InventoryRef", 100, func(c *SIMCard) string { return c.InventoryRef }},
	{"Tariff", 50, func(c *SIMCard) string { return c.Tariff }},
	{"Bundle", 50, func(c *SIMCard) string { return c.Bundle }},
	{"Operator", 50, func(c *SIMCard) string { return c.Operator }},
	{"SOC", 50, func(c *SIMCard) string { return c.SOC }},
	{"PurchaseOrder", 50, func(c *SIMCard) string { return c.PurchaseOrder }},
}

// validate applies the SIMCard model's rules; nil when the card is fine.
func validate(c *SIMCard) *envelope {
	bad := func(errorCode, sub int, format string, args ...any) *envelope {
		e := failure(http.StatusBadRequest, errorCode, sub, fmt.Sprintf(format, args...))
		return &e
	}
	switch {
	case c.CLI == "":
		return bad(1001, 1, "The CLI field is required.")
	case !cliPattern.MatchString(c.CLI):
		return bad(1001, 1, "The field CLI must match the regular expression '%s'.", cliPattern.String())
	case c.SIMNumber != "" && !simNumberPattern.MatchString(c.SIMNumber):
		return bad(1001, 2, "The field SIMNumber must be 18 to 22 digits.")
	}
	for i, f := range fieldLimits {
		if n := len([]rune(f.get(c))); n > f.max {
			return bad(1002, 3+i, "The field %s must be a string with a maximum length of %d.", f.name, f.max)
		}
	}
	return nil
}

// create is POST /v1/accounts/{key}/hardware/sims.
func (s *Simulator) create(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" && mt != "text/json" {
		s.reply(w, http.StatusUnsupportedMediaType, failure(http.StatusUnsupportedMediaType, 1415, 0,
			"The request entity's media type is not supported for this resource."))
		return
	}
	var card SIMCard
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&card); err != nil {
		s.reply(w, http.StatusBadRequest, failure(http.StatusBadRequest, 1000, 0,
			"The request body is not a valid SIMCard: "+err.Error()))
		return
	}
	if s.backendFails() {
		// Refused before anything was recorded, like a 503: sending it again
		// is not a duplicate, so it is not counted as provisioning.
		s.reply(w, http.StatusOK, failure(http.StatusInternalServerError, 5000, 0,
			"The operator platform did not respond; the SIM was not created."))
		return
	}
	s.kit.Provisioned(card.CLI)
	if unknownAccount(key) {
		s.reply(w, http.StatusNotFound, failure(http.StatusNotFound, 1404, 0,
			fmt.Sprintf("The ApiAccount '%s' does not exist.", key)))
		return
	}
	if e := validate(&card); e != nil {
		s.reply(w, http.StatusBadRequest, *e)
		return
	}

	now := s.opts.Now()
	s.mu.Lock()
	if s.simLocked(card.CLI, now) != nil {
		s.mu.Unlock()
		// "a failure result with a 409 error code", in the form's spelling.
		status, env := s.duplicate(card.CLI)
		s.reply(w, status, env)
		return
	}
	req := s.acceptLocked(key, card, now)
	data := req.sim.card
	s.mu.Unlock()
	s.reply(w, http.StatusAccepted, envelope{
		Success:   true,
		Code:      http.StatusAccepted,
		StatusURL: s.statusURL(key, card.CLI, req.id),
		Meta:      s.meta(req.id),
		Data:      data,
	})
}

func unknownAccount(key string) bool {
	return strings.HasPrefix(strings.ToLower(key), "unknown")
}

// backendFails draws the Code-500-under-HTTP-200 answer: scripted by
// FailNext, or at a quarter of the random fault rate.
func (s *Simulator) backendFails() bool {
	s.mu.Lock()
	if s.failNext > 0 {
		s.failNext--
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()
	if f := s.kit.Faults(); f.FaultRate > 0 && s.kit.Rand() < f.FaultRate/4 {
		s.kit.Count("envelope_500", 1)
		return true
	}
	return false
}

// status is GET {StatusUrl}, in either form: .../status/{id} or
// .../status?cmdid={id}. The request must be addressed under the account
// and CLI it was made for.
func (s *Simulator) status(w http.ResponseWriter, r *http.Request) {
	key, cli, id := r.PathValue("key"), r.PathValue("cli"), r.PathValue("id")
	if id == "" {
		id = r.URL.Query().Get("cmdid")
	}
	now := s.opts.Now()
	s.mu.Lock()
	req := s.requests[id]
	if req == nil || req.account != key || req.cli != cli {
		s.mu.Unlock()
		s.reply(w, http.StatusNotFound, failure(http.StatusNotFound, 2404, 0,
			fmt.Sprintf("No request %s for SIM %s on account %s.", id, cli, key)))
		return
	}
	s.settleLocked(req, now)
	card := req.card
	if req.status == StatusPending {
		card = req.sim.card
	}
	data := RequestStatus{
		ID: req.id, Operation: "CreateSIM", Status: flexText(req.status),
		Created: req.created.UTC().Format(time.RFC3339Nano), SIMCard: &card,
	}
	if req.status != StatusPending {
		data.Updated = req.due.UTC().Format(time.RFC3339Nano)
	}
	failed := req.failure
	s.mu.Unlock()
	if failed != nil && data.Status == StatusFailed {
		e := *failed
		e.Data = data
		s.reply(w, http.StatusOK, e)
		return
	}
	s.reply(w, http.StatusOK, envelope{Success: true, Code: http.StatusOK, Data: data})
}

// lookup is GET /v1/accounts/{key}/hardware/sims/{cli}.
func (s *Simulator) lookup(w http.ResponseWriter, r *http.Request) {
	key, cli := r.PathValue("key"), r.PathValue("cli")
	s.mu.Lock()
	e := s.simLocked(cli, s.opts.Now())
	var card SIMCard
	found := e != nil && e.account == key
	if found {
		card = e.card
	}
	s.mu.Unlock()
	if !found {
		s.reply(w, http.StatusNotFound, failure(http.StatusNotFound, 1405, 0,
			fmt.Sprintf("SIM %s was not found on account %s.", cli, key)))
		return
	}
	s.reply(w, http.StatusOK, envelope{Success: true, Code: http.StatusOK, Data: card})
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
