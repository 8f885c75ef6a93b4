package asavie

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// SIMState is SIMCard.State. The JSON samples carry it as a number, the XML
// samples as a name; UnmarshalJSON takes either, MarshalJSON writes the
// number as the JSON samples do.
type SIMState int

// SIM states as the docs number them.
const (
	StateNotActivated SIMState = 0
	StateReady        SIMState = 1
	StateTest         SIMState = 2
	StateLive         SIMState = 3
	StateSuspend      SIMState = 4
	StateBar          SIMState = 5
	StateUnknown      SIMState = 6
	StateTerminated   SIMState = 100
)

var simStateNames = map[string]int{
	"notactivated": 0, "ready": 1, "test": 2, "live": 3,
	"suspend": 4, "bar": 5, "unknown": 6, "terminated": 100,
}

// String returns the docs' name of the state ("live", "suspend", ...).
func (s SIMState) String() string { return enumName(simStateNames, int(s), "state") }

// UnmarshalJSON accepts 3, "3" or "live".
func (s *SIMState) UnmarshalJSON(b []byte) error {
	v, err := parseEnum(b, simStateNames, "SIM state")
	*s = SIMState(v)
	return err
}

// ParseSIMState reads a state name or number.
func ParseSIMState(name string) (SIMState, bool) {
	v, err := enumValue(name, simStateNames, "SIM state")
	if err != nil {
		return 0, false
	}
	if _, known := simStateNames[SIMState(v).String()]; !known {
		return 0, false
	}
	return SIMState(v), true
}

// ActorStatus is the health of the resource's actor: pending while a long
// operation (such as creating the SIM) runs.
type ActorStatus int

// Actor statuses as the docs number them.
const (
	ActorStable  ActorStatus = 0
	ActorPending ActorStatus = 1
	ActorStalled ActorStatus = 10
)

var actorStatusNames = map[string]int{"stable": 0, "pending": 1, "stalled": 10}

func (a ActorStatus) String() string { return enumName(actorStatusNames, int(a), "actor") }

// UnmarshalJSON accepts 1, "1" or "pending".
func (a *ActorStatus) UnmarshalJSON(b []byte) error {
	v, err := parseEnum(b, actorStatusNames, "actor status")
	*a = ActorStatus(v)
	return err
}

// NetworkStatus is the SIM's connection on the operator network.
type NetworkStatus int

var networkStatusNames = map[string]int{"disconnected": 0, "connected": 1, "activation": 10}

func (n NetworkStatus) String() string { return enumName(networkStatusNames, int(n), "network") }

// UnmarshalJSON accepts 0, "0" or "disconnected".
func (n *NetworkStatus) UnmarshalJSON(b []byte) error {
	v, err := parseEnum(b, networkStatusNames, "network status")
	*n = NetworkStatus(v)
	return err
}

func enumName(names map[string]int, v int, kind string) string {
	for name, n := range names {
		if n == v {
			return name
		}
	}
	return kind + "(" + strconv.Itoa(v) + ")"
}

func parseEnum(b []byte, names map[string]int, kind string) (int, error) {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return 0, nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, fmt.Errorf("%s: %w", kind, err)
		}
		return enumValue(s, names, kind)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s %.20q is neither a number nor a name", kind, b)
	}
	return n, nil
}

func enumValue(s string, names map[string]int, kind string) (int, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	if n, ok := names[strings.ToLower(s)]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown %s %.40q", kind, s)
}

// SIMCard is the SIM resource as Asavie returns it. Reading, any field may
// be null (the live API writes unset fields as null) or absent; Hints, which
// the client never uses, is not read. Written (by the alternate-form
// simulator), unset strings are left out and the enums always written, as
// the reference page's sample does.
type SIMCard struct {
	CLI               string            `json:"CLI"`
	SIMNumber         string            `json:"SIMNumber,omitempty"`
	Description       string            `json:"Description,omitempty"`
	InventoryRef      string            `json:"InventoryRef,omitempty"`
	State             SIMState          `json:"State"`
	Version           int               `json:"Version"`
	ActorStatus       ActorStatus       `json:"ActorStatus"`
	ForeignAttributes map[string]string `json:"ForeignAttributes,omitempty"`
	Tariff            string            `json:"Tariff,omitempty"`
	Bundle            string            `json:"Bundle,omitempty"`
	Operator          string            `json:"Operator,omitempty"`
	NetworkStatus     NetworkStatus     `json:"NetworkStatus"`
	Created           string            `json:"Created,omitempty"`
	SOC               string            `json:"SOC,omitempty"`
	InternalSOC       string            `json:"InternalSOC,omitempty"`
	PurchaseOrder     string            `json:"PurchaseOrder,omitempty"`
	Provider          string            `json:"Provider,omitempty"`
	ProviderTariff    string            `json:"ProviderTariff,omitempty"`
	ProviderPrice     string            `json:"ProviderPrice,omitempty"`
	ProviderStartDate string            `json:"ProviderStartDate,omitempty"`
}

// createSIM is the body the client sends: only the documented SIMCard
// fields a manifest row can fill, empty ones left out. State, Version and
// the actor fields belong to the server.
type createSIM struct {
	CLI           string `json:"CLI"`
	SIMNumber     string `json:"SIMNumber,omitempty"`
	Description   string `json:"Description,omitempty"`
	InventoryRef  string `json:"InventoryRef,omitempty"`
	Tariff        string `json:"Tariff,omitempty"`
	Bundle        string `json:"Bundle,omitempty"`
	Operator      string `json:"Operator,omitempty"`
	SOC           string `json:"SOC,omitempty"`
	PurchaseOrder string `json:"PurchaseOrder,omitempty"`
}

// RequestStatus is the Data of the resource a StatusUrl names. No public
// source shows it: the reference page only says that a created SIM's
// Status becomes "complete". The rest of the shape is simbulk's guess, read
// by the client and written by the simulator alike: Status is pending,
// complete or failed, and SIMCard is the SIM as the request left it. Status
// is kept as text whatever JSON scalar it arrives as, so that a value the
// client does not know can be quoted back (see the package doc).
type RequestStatus struct {
	ID        string   `json:"Id"`
	Operation string   `json:"Operation,omitempty"`
	Status    flexText `json:"Status"`
	Created   string   `json:"Created,omitempty"`
	Updated   string   `json:"Updated,omitempty"`
	SIMCard   *SIMCard `json:"SIMCard,omitempty"`
}

// Request statuses.
const (
	StatusPending  = "pending"
	StatusComplete = "complete"
	StatusFailed   = "failed"
)

// normStatus folds the spellings a status could plausibly arrive in onto
// the three the client acts on; anything else is returned as is.
func normStatus(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "pending", "queued", "accepted", "running", "inprogress", "in_progress", "processing":
		return StatusPending
	case "complete", "completed", "succeeded", "success":
		return StatusComplete
	case "failed", "failure", "error":
		return StatusFailed
	}
	return s
}

// envelope is what the simulator builds: Asavie's PBPRReturnOf<T>, written
// as it stands in the alternate form (the reference page's sample) and
// through capturedEnvelope in the documented form (the live captures).
type envelope struct {
	Success          bool              `json:"Success"`
	Code             int               `json:"Code"`
	ErrorCode        int               `json:"ErrorCode,omitempty"`
	ErrorSubCode     int               `json:"ErrorSubCode,omitempty"`
	ErrorDescription string            `json:"ErrorDescription,omitempty"`
	StatusURL        string            `json:"StatusUrl,omitempty"`
	Meta             map[string]string `json:"Meta,omitempty"`
	Data             any               `json:"Data,omitempty"`
}

// reply is what the client reads: the same envelope, parsed tolerantly.
// Success is a pointer so that a body without it (a proxy's or rate
// limiter's JSON) is not mistaken for an envelope. Every other field may
// be null or absent: the live API writes "StatusUrl": null and
// "ErrorDescription": "" on every answer (GraphDefined/AsavieAPI
// captures), and ContinuationToken, which a single-SIM call never needs,
// is not read at all.
type reply struct {
	Success          *bool           `json:"Success"`
	Code             flexInt         `json:"Code"`
	ErrorCode        flexInt         `json:"ErrorCode"`
	ErrorSubCode     flexInt         `json:"ErrorSubCode"`
	ErrorDescription string          `json:"ErrorDescription"`
	StatusURL        string          `json:"StatusUrl"`
	Meta             flexMeta        `json:"Meta"`
	Data             json.RawMessage `json:"Data"`
}

// meta returns a Meta value as text, "" when Meta is not an object.
func (r *reply) meta(key string) string {
	for k, v := range r.Meta.fields {
		if strings.EqualFold(k, key) {
			switch v := v.(type) {
			case string:
				return v
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64)
			}
		}
	}
	return ""
}

// flexMeta is the envelope's Meta. The reference page documents it as a
// Dictionary of string and string ({"k": "v"}); every reply captured from
// the live API carries "Meta": "" instead. Both are read, and so is null.
// Meta is optional metadata the client only mines for a RequestId, so any
// other JSON value is ignored rather than allowed to make a whole answer
// unreadable: that is how a harmless "" once turned every reply into a
// malformed one.
type flexMeta struct {
	fields map[string]any // Meta as an object
	text   string         // Meta as a string
}

func (m *flexMeta) UnmarshalJSON(b []byte) error {
	*m = flexMeta{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '{':
		return json.Unmarshal(b, &m.fields)
	case '"':
		return json.Unmarshal(b, &m.text)
	}
	return nil
}

// flexText is a JSON string that may also arrive as a number, a boolean
// or null; it keeps the value's text so that an answer the client cannot
// act on can be quoted back to a person.
type flexText string

func (t *flexText) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = flexText(s)
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return fmt.Errorf("a JSON %s where text was expected", map[byte]string{'{': "object", '[': "array"}[b[0]])
	default:
		*t = flexText(b)
	}
	return nil
}

// hasData reports whether Data holds something other than null.
func (r *reply) hasData() bool {
	d := bytes.TrimSpace(r.Data)
	return len(d) > 0 && !bytes.Equal(d, []byte("null"))
}

// flexInt is an integer that may arrive as a number or a numeric string.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %.20q", s)
	}
	*f = flexInt(n)
	return nil
}
