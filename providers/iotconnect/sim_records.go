package iotconnect

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/simbulk/simbulk/ingest/checkdigit"
)

// record is one registered eUICC. Its IoT subscription comes into being
// at readyAt (evaluated lazily on every read); until then only the
// registration is visible.
type record struct {
	reg        Registration
	imsi       string
	iccid      string
	msisdn     string
	subID      string
	mode       string
	acceptedAt time.Time
	readyAt    time.Time
}

func (r *record) ready(now time.Time) bool { return !now.Before(r.readyAt) }

// Record is a snapshot of one registration, for tests and drift checks.
type Record struct {
	Registration
	IMSI           string
	ICCID          string
	MSISDN         string
	SubscriptionID string
	Mode           string
	// Pending is true while the IoT subscription is not there yet.
	Pending bool
}

func (r *record) snapshot(now time.Time) Record {
	return Record{
		Registration: r.reg, IMSI: r.imsi, ICCID: r.iccid, MSISDN: r.msisdn,
		SubscriptionID: r.subID, Mode: r.mode, Pending: !r.ready(now),
	}
}

// Identifier ranges that can never reach a real subscriber: IMSIs of the
// test network 001-01, and MSISDNs +46 0…, a Swedish number with a leading
// trunk zero, as in the documents' own example "46000000001".
const (
	imsiPrefix   = "00101"   // + 10 digits = 15
	iccidPrefix  = "8947000" // + 12 digits + Luhn = 20
	msisdnPrefix = "4600"    // + 10 digits = 14
	subIDChars   = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
)

// register stores a new record with identifiers derived from the EID, so
// that the same EID gets the same identifiers whatever the order of
// registration; a clash with an identifier already assigned moves on to the
// next candidate. The caller holds s.mu and has checked the EID is new.
func (s *Simulator) register(reg Registration, now time.Time, delay time.Duration) *record {
	if reg.DomainID == "" {
		reg.DomainID = s.opts.DomainID
	}
	r := &record{
		reg:        reg,
		mode:       ModeActive,
		acceptedAt: now,
		readyAt:    now.Add(delay),
	}
	r.imsi = s.assign("imsi", reg.EID, func(h []byte) string { return imsiPrefix + digits(h, 10) })
	r.iccid = s.assign("iccid", reg.EID, func(h []byte) string {
		body := iccidPrefix + digits(h, 12)
		return body + string(checkdigit.LuhnDigit(body))
	})
	r.msisdn = s.assign("msisdn", reg.EID, func(h []byte) string { return msisdnPrefix + digits(h, 10) })
	r.subID = s.assign("sub", reg.EID, func(h []byte) string {
		var b strings.Builder
		b.WriteString([]string{"85", "97"}[h[31]&1])
		for _, c := range h[:16] {
			b.WriteByte(subIDChars[c%32])
		}
		return b.String()
	})
	s.byEID[reg.EID] = r
	s.bySub[r.subID] = reg.EID
	return r
}

// assign picks the first free candidate identifier of a kind for an EID.
func (s *Simulator) assign(kind, eid string, gen func(h []byte) string) string {
	for n := 0; ; n++ {
		h := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%d", kind, eid, n))
		v := gen(h[:])
		if key := kind + ":" + v; !s.taken[key] {
			s.taken[key] = true
			return v
		}
	}
}

// digits renders the first 8 bytes of h as n decimal digits (n <= 18).
func digits(h []byte, n int) string {
	mod := uint64(1)
	for range n {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", n, binary.BigEndian.Uint64(h[:8])%mod)
}

// find returns the record for an EID or an IoT subscription id. The
// caller holds s.mu.
func (s *Simulator) find(id string) *record {
	if r, ok := s.byEID[id]; ok {
		return r
	}
	if eid, ok := s.bySub[id]; ok {
		return s.byEID[eid]
	}
	return nil
}

// Count is the number of registered eUICCs.
func (s *Simulator) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byEID)
}

// Get returns the registration of an EID (or IoT subscription id).
func (s *Simulator) Get(id string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.find(id)
	if r == nil {
		return Record{}, false
	}
	return r.snapshot(s.opts.Now()), true
}

// Preload registers an eUICC whose IoT subscription is already there, as
// if provisioned long ago: reconciliation tests start from it. It does not
// count as a provisioning request. It refuses what the API would refuse.
func (s *Simulator) Preload(reg Registration) (Record, error) {
	if errs := validateRegistration(reg); len(errs) > 0 {
		return Record{}, fmt.Errorf("iotconnect sim: preload %s: %s", reg.EID, errs[0].Message)
	}
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byEID[reg.EID] != nil {
		return Record{}, fmt.Errorf("iotconnect sim: preload %s: already registered", reg.EID)
	}
	return s.register(reg, now, 0).snapshot(now), nil
}

// Forget deletes the registration of an EID (or IoT subscription id), as
// if it had been removed at the provider.
func (s *Simulator) Forget(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.find(id)
	if r == nil {
		return false
	}
	delete(s.byEID, r.reg.EID)
	delete(s.bySub, r.subID)
	for kind, v := range map[string]string{"imsi": r.imsi, "iccid": r.iccid, "msisdn": r.msisdn, "sub": r.subID} {
		delete(s.taken, kind+":"+v)
	}
	return true
}

// SetState changes the mode of the connectivity subscription of an EID
// (or IoT subscription id): ACTIVE, ACTIVE_NO_BILLING, DEACTIVATED, PAUSED
// or TERMINATED, any case. A pending registration takes the mode when its
// subscription appears.
func (s *Simulator) SetState(id, state string) bool {
	mode := strings.ToUpper(strings.TrimSpace(state))
	if !validMode(mode) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.find(id)
	if r == nil {
		return false
	}
	r.mode = mode
	return true
}

func validMode(m string) bool {
	switch m {
	case ModeActive, ModeActiveNoBilling, ModeDeactivated, ModePaused, ModeTerminated:
		return true
	}
	return false
}

// Alter changes one identifier of a registration, as drift at the
// provider: field is "iccid", "imsi" or "msisdn".
func (s *Simulator) Alter(id, field, value string) bool {
	if value == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.find(id)
	if r == nil {
		return false
	}
	var target *string
	switch strings.ToLower(field) {
	case "iccid":
		target = &r.iccid
	case "imsi":
		target = &r.imsi
	case "msisdn":
		target = &r.msisdn
	default:
		return false
	}
	kind := strings.ToLower(field)
	delete(s.taken, kind+":"+*target)
	*target = value
	s.taken[kind+":"+value] = true
	return true
}
