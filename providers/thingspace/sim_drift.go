package thingspace

import "time"

// Hooks for tests and reconciliation demos: they change what the simulated
// provider holds behind the client's back, as people and other systems do.

// Forget deletes the device record of an EID (the request history stays).
func (s *Simulator) Forget(eid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.devices[eid]
	delete(s.devices, eid)
	return ok
}

// SetState sets the state the device list reports for an EID, e.g.
// "deactive" or "suspend"; "" returns it to following its activation.
func (s *Simulator) SetState(eid, state string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[eid]
	if ok {
		d.state = state
	}
	return ok
}

// Alter changes one identifier of an EID's record: field "iccid", "imei",
// or "mdn"/"msisdn".
func (s *Simulator) Alter(eid, field, value string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[eid]
	if !ok {
		return false
	}
	switch field {
	case "iccid":
		d.iccid = value
	case "imei":
		d.imei = value
	case "mdn", "msisdn":
		d.mdn = value
	default:
		return false
	}
	return true
}

// FailActivation makes the next activation of the EID fail at the
// provider: the request is accepted, and its result (callback and status)
// reports the failure.
func (s *Simulator) FailActivation(eid string) {
	s.mu.Lock()
	s.failing[eid] = true
	s.mu.Unlock()
}

// Preload records an EID as already active in an account, as if activated
// before simbulk ran. iccid may be "".
func (s *Simulator) Preload(account, eid, iccid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if iccid == "" {
		iccid = iccidWithCheck(s.seq)
	}
	t := s.now().Add(-time.Hour)
	s.devices[eid] = &simDevice{
		eid: eid, iccid: iccid, mdn: fmtSeq("201", s.seq, 7), account: account,
		carrier: "Verizon Wireless", createdAt: t, readyAt: t,
	}
}

// Count is the number of device records.
func (s *Simulator) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.devices)
}
