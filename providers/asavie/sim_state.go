package asavie

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/simbulk/simbulk/ingest/checkdigit"
)

// acceptLocked records a create request and its SIM, pending until
// AsyncDelay has passed. The SIM is visible to lookups at once, so crash
// recovery finds it.
func (s *Simulator) acceptLocked(account string, in SIMCard, now time.Time) *requestEntry {
	card := SIMCard{
		CLI: in.CLI, SIMNumber: in.SIMNumber, Description: in.Description, InventoryRef: in.InventoryRef,
		Tariff: in.Tariff, Bundle: in.Bundle, Operator: in.Operator, SOC: in.SOC, PurchaseOrder: in.PurchaseOrder,
		ForeignAttributes: in.ForeignAttributes,
		State:             StateNotActivated, ActorStatus: ActorPending, NetworkStatus: 0, Version: 1,
		Created: now.UTC().Format(time.RFC3339Nano),
	}
	req := &requestEntry{
		id: s.newRequestID(), account: account, cli: card.CLI,
		created: now, due: now.Add(s.opts.AsyncDelay), status: StatusPending,
	}
	if card.SIMNumber != "" && !checkdigit.LuhnValid(card.SIMNumber) {
		f := failure(http.StatusUnprocessableEntity, 2105, 0,
			fmt.Sprintf("The operator platform rejected SIM number %s: check digit mismatch.", card.SIMNumber))
		req.failure = &f
	}
	sim := &simEntry{account: account, card: card, create: req}
	req.sim = sim
	s.sims[card.CLI] = sim
	s.requests[req.id] = req
	return req
}

// settleLocked completes a request whose time has come: the SIM becomes
// ready, or, if the operator refuses it, the request fails and the SIM is
// removed. Completion is evaluated lazily, whenever the request or its SIM
// is looked at.
func (s *Simulator) settleLocked(req *requestEntry, now time.Time) {
	if req.status != StatusPending || now.Before(req.due) {
		return
	}
	sim := req.sim
	sim.create = nil
	if req.failure != nil {
		req.status = StatusFailed
		sim.card.ActorStatus = ActorStable
		req.card = sim.card
		if s.sims[req.cli] == sim {
			delete(s.sims, req.cli)
		}
		return
	}
	sim.card.State = StateReady
	sim.card.ActorStatus = ActorStable
	sim.card.Version++
	req.status = StatusComplete
	req.card = sim.card
}

// simLocked returns the SIM with cli, settled, or nil.
func (s *Simulator) simLocked(cli string, now time.Time) *simEntry {
	e := s.sims[cli]
	if e != nil && e.create != nil {
		s.settleLocked(e.create, now)
		e = s.sims[cli]
	}
	return e
}

// Count returns how many SIMs the simulator holds.
func (s *Simulator) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sims)
}

// SIM returns the SIM with cli as a lookup would see it.
func (s *Simulator) SIM(cli string) (SIMCard, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.simLocked(cli, s.opts.Now())
	if e == nil {
		return SIMCard{}, false
	}
	return e.card, true
}

// Seed stores a SIM on account as though it had been created earlier
// (e.g. by another tool), for conflict and reconciliation tests. An unset
// State is notactivated; callers set StateReady for a finished SIM.
func (s *Simulator) Seed(account string, card SIMCard) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if card.Created == "" {
		card.Created = s.opts.Now().UTC().Format(time.RFC3339Nano)
	}
	if card.Version == 0 {
		card.Version = 1
	}
	s.sims[card.CLI] = &simEntry{account: account, card: card}
}

// Forget deletes the SIM with cli, as if it had been removed at Asavie.
func (s *Simulator) Forget(cli string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.simLocked(cli, s.opts.Now()) == nil {
		return false
	}
	delete(s.sims, cli)
	return true
}

// SetState changes a SIM's State ("suspend", "terminated", "live", or the
// number). It reports false for an unknown SIM or state.
func (s *Simulator) SetState(cli, state string) bool {
	st, ok := ParseSIMState(state)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.simLocked(cli, s.opts.Now())
	if e == nil {
		return false
	}
	e.card.State = st
	e.card.Version++
	return true
}

// Alter changes one field of a SIM: sim_number (or iccid), cli,
// description, inventory_ref, tariff, bundle, operator, soc,
// purchase_order, or actor_status (stable, pending, stalled). It reports
// false for an unknown SIM or field, or a cli that is taken.
func (s *Simulator) Alter(cli, field, value string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.simLocked(cli, s.opts.Now())
	if e == nil {
		return false
	}
	c := &e.card
	switch strings.ToLower(field) {
	case "sim_number", "simnumber", "iccid":
		c.SIMNumber = value
	case "cli":
		if value == "" || s.sims[value] != nil {
			return false
		}
		delete(s.sims, cli)
		c.CLI = value
		s.sims[value] = e
	case "description":
		c.Description = value
	case "inventory_ref":
		c.InventoryRef = value
	case "tariff":
		c.Tariff = value
	case "bundle":
		c.Bundle = value
	case "operator":
		c.Operator = value
	case "soc":
		c.SOC = value
	case "purchase_order":
		c.PurchaseOrder = value
	case "actor_status":
		v, err := enumValue(value, actorStatusNames, "actor status")
		if err != nil {
			return false
		}
		c.ActorStatus = ActorStatus(v)
	default:
		return false
	}
	c.Version++
	return true
}
