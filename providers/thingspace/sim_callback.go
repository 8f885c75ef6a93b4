package thingspace

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/simbulk/simbulk/providers/simkit"
)

// callbackAttempts is maxCallbackThreshold: ThingSpace tries a delivery
// this many times.
const callbackAttempts = 4

// handleRegister is POST /api/m2m/v1/callbacks/{accountName}.
func (s *Simulator) handleRegister(w http.ResponseWriter, r *http.Request) {
	account := r.PathValue("account")
	var reg callbackRegistration
	if !decodeJSON(w, r, &reg) {
		return
	}
	u, err := url.Parse(reg.URL)
	switch {
	case !reAccount.MatchString(account):
		simError(w, http.StatusBadRequest, "accountName must look like 0000123456-00001")
		return
	case reg.Name == "":
		simError(w, http.StatusBadRequest, "name is required")
		return
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		simError(w, http.StatusBadRequest, "url must be an absolute http(s) URL")
		return
	}
	s.mu.Lock()
	s.callbacks[account+"|"+reg.Name] = reg
	s.mu.Unlock()
	simkit.WriteJSON(w, http.StatusOK, map[string]string{"accountName": account, "name": reg.Name})
}

// CallbackURL is the URL registered for the account's DeviceProfileService
// callback, "" if none.
func (s *Simulator) CallbackURL(account string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callbacks[account+"|"+callbackService].URL
}

// scheduleLocked arranges the request's callbacks for when it completes
// and, in the alternate form, a first "warning" callback halfway there for
// a request that takes time. Whether a callback is registered is decided
// when it is due, as the service would.
func (s *Simulator) scheduleLocked(rq *simRequest) {
	if s.closed {
		return
	}
	s.afterLocked(rq, rq.id, s.opts.AsyncDelay+s.opts.CallbackDelay, false)
	if s.opts.Forms == simkit.Alternate && s.opts.AsyncDelay > 0 {
		s.afterLocked(rq, rq.id+"|warning", s.opts.AsyncDelay/2, true)
	}
}

// afterLocked sends the request's callbacks d from now.
func (s *Simulator) afterLocked(rq *simRequest, timer string, d time.Duration, warning bool) {
	s.timers[timer] = time.AfterFunc(d, func() {
		s.mu.Lock()
		delete(s.timers, timer)
		reg, ok := s.callbacks[rq.account+"|"+callbackService]
		if s.closed || !ok {
			s.mu.Unlock()
			return
		}
		s.wg.Add(len(rq.devices))
		s.mu.Unlock()
		for _, dev := range rq.devices {
			go s.deliver(reg, rq.id, dev, warning)
		}
	})
}

// deliver sends one device's callback, with the fault knobs applied:
// jitter, loss, duplication, and up to 4 attempts on failure.
func (s *Simulator) deliver(reg callbackRegistration, requestID string, d simDevice, warning bool) {
	defer s.wg.Done()
	if j := s.opts.CallbackJitter; j > 0 && !s.sleep(time.Duration(s.kit.Rand()*float64(j))) {
		return
	}
	if s.opts.CallbackLoss > 0 && s.kit.Rand() < s.opts.CallbackLoss {
		s.kit.Count("callbacks_lost", 1)
		return
	}
	copies := 1
	if s.opts.CallbackDuplicate > 0 && s.kit.Rand() < s.opts.CallbackDuplicate {
		copies = 2
		s.kit.Count("callbacks_duplicated", 1)
	}
	for range copies {
		for attempt := 1; attempt <= callbackAttempts; attempt++ {
			if s.post(reg.URL, s.callbackBody(reg, requestID, d, warning, attempt)) {
				s.kit.Count("callbacks_sent", 1)
				break
			}
			s.kit.Count("callbacks_failed", 1)
			if attempt == callbackAttempts || !s.sleep(s.opts.CallbackRetryWait*time.Duration(attempt)) {
				break
			}
		}
	}
}

// callbackBody is one delivery in the simulator's form: the activate
// page's example (deviceResponse an object, callbackCount a number), or the
// callback table's types (deviceResponse and deviceProfileResponse arrays,
// callbackCount and maxCallbackThreshold strings).
func (s *Simulator) callbackBody(reg callbackRegistration, requestID string, d simDevice, warning bool, attempt int) any {
	status, p := "SUCCESS", profileResponse{
		DeviceIdentifierCollection:      d.ids(),
		State:                           "Active",
		ProfileStatus:                   "ENABLE",
		EuiccStatus:                     "EXECUTED_SUCCESS",
		EuiccStatusCode:                 "1.2.365",
		EuiccStatusDesc:                 "EUICC device profile has been updated",
		EuiccSubAddressUpdateStatus:     "EXECUTED_SUCCESS",
		EuiccSubAddressUpdateStatusCode: "1",
		EuiccSubAddressUpdateStatusDesc: "SUCCESS: Address has been updated",
		CarrierName:                     d.carrier,
		ProfileRole:                     "LEAD",
	}
	switch {
	case warning:
		status = "WARNING"
		p = profileResponse{DeviceIdentifierCollection: d.ids(), State: "Pre-active", CarrierName: d.carrier,
			EuiccStatusDesc: "Profile download in progress"}
	case d.failed:
		status = "FAILED"
		p.State, p.ProfileStatus = "Deactive", "DISABLE"
		p.EuiccStatus, p.EuiccStatusCode, p.EuiccStatusDesc = "EXECUTED_FAILURE", simFailCode, simFailDesc
		p.EuiccSubAddressUpdateStatus, p.EuiccSubAddressUpdateStatusCode, p.EuiccSubAddressUpdateStatusDesc = "", "", ""
	}
	if s.opts.Forms == simkit.Alternate {
		return altCallbackDelivery{
			Username: reg.Username, Password: reg.Password, RequestID: requestID, DeviceIDs: d.ids(),
			DeviceResponse: []altDeviceResp{{DeviceProfileResponse: []profileResponse{p}}},
			Status:         status, CallbackCount: strconv.Itoa(attempt), MaxCallbackThreshold: strconv.Itoa(callbackAttempts),
		}
	}
	return callbackDelivery{
		Username: reg.Username, Password: reg.Password, RequestID: requestID, DeviceIDs: d.ids(),
		DeviceResponse: deliveryDeviceResp{DeviceProfileResponse: p},
		Status:         status, CallbackCount: attempt, MaxCallbackThreshold: callbackAttempts,
	}
}

// post sends one delivery attempt; true on a 2xx answer.
func (s *Simulator) post(u string, body any) bool {
	b, err := json.Marshal(body)
	if err != nil {
		return false
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode <= 299
}

// sleep waits d unless the simulator closes first; false if it did.
func (s *Simulator) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}
