package thingspace

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/simbulk/simbulk/ingest/checkdigit"
	"github.com/simbulk/simbulk/providers/simkit"
)

// Device states of the simulator's records (SetState takes them). The
// device list reports them in the words of SimOptions.Forms: the SDK's
// documented "Activate", "Pre-active", "Deactive", "Suspend", or these
// lower-case forms.
const (
	StateActive   = "active"
	StatePending  = "pre-active"
	StateDeactive = "deactive"
	StateSuspend  = "suspend"
)

// documentedStates are the state words of the SDK's CarrierInformation.
var documentedStates = map[string]string{
	StateActive: "Activate", StatePending: "Pre-active", StateDeactive: "Deactive", StateSuspend: "Suspend",
}

// wireState is a record's state as the device list reports it in the
// simulator's forms; a state set by SetState that is not one of ours is
// reported as given.
func (s *Simulator) wireState(state string) string {
	if s.opts.Forms == simkit.Documented {
		if w, ok := documentedStates[state]; ok {
			return w
		}
	}
	return state
}

// simDevice is the simulator's record of one device.
type simDevice struct {
	eid, iccid, imei, mdn  string
	account, plan, carrier string
	requestID              string
	createdAt, readyAt     time.Time
	failed                 bool
	state                  string // set by SetState; "" = follow the activation
}

func (d *simDevice) stateAt(now time.Time) string {
	switch {
	case d.state != "":
		return d.state
	case now.Before(d.readyAt):
		return StatePending
	case d.failed:
		return StateDeactive
	}
	return StateActive
}

func (d *simDevice) ids() []deviceID {
	ids := []deviceID{{Kind: kindEID, ID: d.eid}}
	for _, x := range []deviceID{{Kind: kindICCID, ID: d.iccid}, {Kind: kindIMEI, ID: d.imei}, {Kind: kindMDN, ID: d.mdn}} {
		if x.ID != "" {
			ids = append(ids, x)
		}
	}
	return ids
}

// simRequest is one accepted activate request, with what each of its
// devices looked like at acceptance (the request's own history survives
// drift of the device records).
type simRequest struct {
	id, account        string
	createdAt, readyAt time.Time
	devices            []simDevice
}

// Failure the simulator reports for an activation set up by FailActivation.
const (
	simFailCode = "1.2.500"
	simFailDesc = "EUICC profile download failed"
)

var (
	reAccount = regexp.MustCompile(`^\d{10}-\d{5}$`)
	reKindID  = map[string]*regexp.Regexp{
		kindEID:   regexp.MustCompile(`^\d{32}$`),
		kindICCID: regexp.MustCompile(`^\d{19,20}$`),
		kindIMEI:  regexp.MustCompile(`^\d{15,16}$`),
		kindMDN:   regexp.MustCompile(`^\d{10}$`),
	}
	reFirstName = regexp.MustCompile(`^[A-Za-z0-9 \-!#]{1,20}$`)
	reLastName  = regexp.MustCompile(`^[A-Za-z0-9 \-!#]{1,25}$`)
	reState     = regexp.MustCompile(`^[A-Za-z]{2}$`)
	reZip       = regexp.MustCompile(`^\d{5}$`)
	reZip4      = regexp.MustCompile(`^\d{4}$`)
)

// validateActivate checks a request the way the docs describe it.
func validateActivate(req *activateRequest) string {
	switch {
	case req.AccountName == "":
		return "accountName is required"
	case !reAccount.MatchString(req.AccountName):
		return "accountName must look like 0000123456-00001"
	case len(req.Devices) == 0:
		return "devices is required"
	case len(req.Devices) > maxDevices:
		return fmt.Sprintf("at most %d devices per request, got %d", maxDevices, len(req.Devices))
	case req.MdnZipCode != "" && !reZip.MatchString(req.MdnZipCode):
		return "mdnZipCode must be a 5-digit zip code"
	}
	seen := map[string]bool{}
	for i, d := range req.Devices {
		if len(d.DeviceIDs) == 0 {
			return fmt.Sprintf("devices[%d].deviceIds is required", i)
		}
		eids := 0
		for _, id := range d.DeviceIDs {
			re, ok := reKindID[id.Kind]
			if !ok {
				return fmt.Sprintf("devices[%d]: kind %q is not one of imei, iccid, mdn, eid", i, id.Kind)
			}
			if !re.MatchString(id.ID) {
				return fmt.Sprintf("devices[%d]: %s %q is not valid", i, id.Kind, id.ID)
			}
			if id.Kind == kindEID {
				eids++
				if seen[id.ID] {
					return fmt.Sprintf("devices[%d]: eid %s appears twice in the request", i, id.ID)
				}
				seen[id.ID] = true
			}
		}
		if eids != 1 {
			return fmt.Sprintf("devices[%d] must have exactly one id of kind eid", i)
		}
	}
	if p := req.PrimaryPlaceOfUse; p != nil {
		if msg := validatePlaceOfUse(p); msg != "" {
			return "primaryPlaceOfUse." + msg
		}
	}
	return ""
}

func validatePlaceOfUse(p *placeOfUse) string {
	n, a := p.CustomerName, p.Address
	switch {
	case n == nil:
		return "customerName is required"
	case !reFirstName.MatchString(n.FirstName):
		return "customerName.firstName is required: up to 20 letters, digits, space, -, !, #"
	case !reLastName.MatchString(n.LastName):
		return "customerName.lastName is required: up to 25 letters, digits, space, -, !, #"
	case n.MiddleName != "" && !reLastName.MatchString(n.MiddleName):
		return "customerName.middleName: up to 25 letters, digits, space, -, !, #"
	case a == nil:
		return "address is required"
	case strings.TrimSpace(a.AddressLine1) == "":
		return "address.addressLine1 is required"
	case strings.TrimSpace(a.City) == "":
		return "address.city is required"
	case !reState.MatchString(a.State):
		return "address.state must be a two-letter state code"
	case !reZip.MatchString(a.Zip):
		return "address.zip must be a 5-digit zip code"
	case a.Zip4 != "" && !reZip4.MatchString(a.Zip4):
		return "address.zip4 must be 4 digits"
	case a.Country != "US" && a.Country != "USA":
		return `address.country must be "US" or "USA"`
	}
	return ""
}

// handleActivate is POST /devices/profile/actions/activate.
func (s *Simulator) handleActivate(w http.ResponseWriter, r *http.Request) {
	var req activateRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	// Every device the service reads counts as processed, refused or not,
	// so duplicates are visible in the stats.
	for _, d := range req.Devices {
		if eid := idsOf(d.DeviceIDs)[kindEID]; eid != "" {
			s.kit.Provisioned(eid)
		}
	}
	if msg := validateActivate(&req); msg != "" {
		simError(w, http.StatusBadRequest, msg)
		return
	}
	s.mu.Lock()
	now := s.now()
	rq := &simRequest{id: newID(), account: req.AccountName, createdAt: now, readyAt: now.Add(s.opts.AsyncDelay)}
	for _, d := range req.Devices {
		ids := idsOf(d.DeviceIDs)
		dev := simDevice{
			eid: ids[kindEID], iccid: ids[kindICCID], imei: ids[kindIMEI], mdn: ids[kindMDN],
			account: req.AccountName, plan: req.ServicePlan, carrier: orDefault(req.CarrierName, "Verizon Wireless"),
			requestID: rq.id, createdAt: now, readyAt: rq.readyAt, failed: s.failing[ids[kindEID]],
		}
		delete(s.failing, dev.eid)
		if old := s.devices[dev.eid]; old != nil {
			dev.iccid = orDefault(dev.iccid, old.iccid)
			dev.mdn = orDefault(dev.mdn, old.mdn)
			dev.createdAt = old.createdAt
		}
		if dev.iccid == "" {
			s.seq++
			dev.iccid = iccidWithCheck(s.seq)
		}
		if dev.mdn == "" && !dev.failed {
			s.seq++
			dev.mdn = fmtSeq("201", s.seq, 7)
		}
		stored := dev
		s.devices[dev.eid] = &stored
		rq.devices = append(rq.devices, dev)
	}
	s.requests[rq.id] = rq
	s.scheduleLocked(rq)
	s.mu.Unlock()
	simkit.WriteJSON(w, http.StatusOK, activateResponse{RequestID: rq.id})
}

// Sub-request statuses the reference page documents.
const (
	simPending = "Pending"
	simSuccess = "Success"
	simFailed  = "Failed"
)

// handleStatus is GET /v2/accounts/{account}/requests/{requestId}/status,
// answered in the simulator's form: the reference page's subRequests with
// ids an array naming the device by ICCID, or the SDK's subrequests with
// ids one object naming it by EID. With BulkStatusUnlisted a request of
// more than one device lists none ("Bulk operation: Not Supported").
func (s *Simulator) handleStatus(w http.ResponseWriter, r *http.Request) {
	account, id := r.PathValue("account"), r.PathValue("requestId")
	s.mu.Lock()
	rq := s.requests[id]
	if rq == nil || rq.account != account {
		s.mu.Unlock()
		simError(w, http.StatusNotFound, "request "+id+" not found for account "+account)
		return
	}
	done := !s.now().Before(rq.readyAt)
	s.mu.Unlock()
	alternate := s.opts.Forms == simkit.Alternate
	subs := []map[string]any{}
	overall := simSuccess
	for _, d := range rq.devices {
		st := simPending
		switch {
		case !done:
			overall = simPending
		case d.failed:
			st, overall = simFailed, simFailed
		default:
			st = simSuccess
		}
		var ids any = []deviceID{{ID: d.iccid, Kind: kindICCID}}
		if d.iccid == "" {
			ids = []deviceID{{ID: d.eid, Kind: kindEID}}
		}
		if alternate {
			ids = deviceID{ID: d.eid, Kind: kindEID}
		}
		subs = append(subs, map[string]any{"ids": ids, "status": st})
	}
	if s.opts.BulkStatusUnlisted && len(rq.devices) > 1 {
		subs = []map[string]any{}
	}
	key := "subRequests"
	if alternate {
		key = "subrequests"
	}
	simkit.WriteJSON(w, http.StatusOK, map[string]any{"requestId": rq.id, "status": overall, key: subs})
}

// maxListed is the page size of the device list call.
const maxListed = 500

// handleList is POST /devices/actions/list.
func (s *Simulator) handleList(w http.ResponseWriter, r *http.Request) {
	var req listRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.AccountName != "" && !reAccount.MatchString(req.AccountName) {
		simError(w, http.StatusBadRequest, "accountName must look like 0000123456-00001")
		return
	}
	if d := req.DeviceID; d != nil {
		if _, ok := reKindID[d.Kind]; !ok || d.ID == "" {
			simError(w, http.StatusBadRequest, "deviceId needs a kind of imei, iccid, mdn or eid and an id")
			return
		}
	}
	s.mu.Lock()
	now := s.now()
	var found []*simDevice
	match := func(d *simDevice) bool {
		if req.AccountName != "" && d.account != req.AccountName {
			return false
		}
		id := req.DeviceID
		return id == nil || idsOf(d.ids())[id.Kind] == id.ID
	}
	if id := req.DeviceID; id != nil && id.Kind == kindEID {
		// Devices are keyed by EID: a lookup by EID must not scan the fleet,
		// or reconciling a large one takes quadratic time.
		if d := s.devices[id.ID]; d != nil && match(d) {
			found = append(found, d)
		}
	} else {
		for _, d := range s.devices {
			if match(d) {
				found = append(found, d)
			}
		}
	}
	slices.SortFunc(found, func(a, b *simDevice) int { return strings.Compare(a.eid, b.eid) })
	out := listResponse{Devices: []listedDevice{}}
	if len(found) > maxListed {
		found, out.HasMoreData = found[:maxListed], true
	}
	for _, d := range found {
		// The SDK's ThingspaceDevice has no device-level state: the
		// documented form keeps it in carrierInformations only.
		st := s.wireState(d.stateAt(now))
		devState := ""
		if s.opts.Forms == simkit.Alternate {
			devState = st
		}
		out.Devices = append(out.Devices, listedDevice{
			AccountName: d.account, DeviceIDs: d.ids(), State: devState,
			CarrierInformations: []carrierInfo{{CarrierName: d.carrier, ServicePlan: d.plan, State: st}},
			CreatedAt:           d.createdAt.UTC().Format(time.RFC3339),
			LastActivationDate:  d.readyAt.UTC().Format(time.RFC3339),
		})
	}
	s.mu.Unlock()
	simkit.WriteJSON(w, http.StatusOK, out)
}

// fmtSeq is prefix followed by n as exactly width digits (wrapping).
func fmtSeq(prefix string, n, width int) string {
	mod := 1
	for range width {
		mod *= 10
	}
	return fmt.Sprintf("%s%0*d", prefix, width, n%mod)
}

// iccidWithCheck is a simulated Verizon ICCID (prefix 89148000) for
// sequence number n, with its Luhn check digit.
func iccidWithCheck(n int) string {
	body := fmtSeq("89148000", n, 10)
	return body + string(checkdigit.LuhnDigit(body))
}
