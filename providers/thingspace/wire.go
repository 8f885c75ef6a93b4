package thingspace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Paths of the ThingSpace API, shared by the client and the simulator.
const (
	pathToken    = "/api/ts/v1/oauth2/token"
	pathLogin    = "/api/m2m/v1/session/login"
	pathActivate = "/api/m2m/v1/devices/profile/actions/activate"
	pathList     = "/api/m2m/v1/devices/actions/list"
	// + {accountName}
	pathCallbacks = "/api/m2m/v1/callbacks/"
	// + {accountName} + /requests/ + {requestId} + /status
	pathAccountsV2 = "/api/m2m/v2/accounts/"

	// callbackService is the callback that reports activation results.
	callbackService = "DeviceProfileService"
	// maxDevices is the most devices one activate request may carry.
	maxDevices = 100
)

// Device id kinds.
const (
	kindEID   = "eid"
	kindICCID = "iccid"
	kindIMEI  = "imei"
	kindMDN   = "mdn"
)

type deviceID struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// idsOf returns the id of each kind (lower-cased kind) in ids.
func idsOf(ids []deviceID) map[string]string {
	m := make(map[string]string, len(ids))
	for _, d := range ids {
		k := strings.ToLower(strings.TrimSpace(d.Kind))
		if k != "" && d.ID != "" {
			if _, ok := m[k]; !ok {
				m[k] = d.ID
			}
		}
	}
	return m
}

type activateDevice struct {
	DeviceIDs []deviceID `json:"deviceIds"`
}

type customerName struct {
	Title      string `json:"title,omitempty"`
	FirstName  string `json:"firstName,omitempty"`
	MiddleName string `json:"middleName,omitempty"`
	LastName   string `json:"lastName,omitempty"`
	Suffix     string `json:"suffix,omitempty"`
}

type address struct {
	AddressLine1 string `json:"addressLine1,omitempty"`
	AddressLine2 string `json:"addressLine2,omitempty"`
	City         string `json:"city,omitempty"`
	State        string `json:"state,omitempty"`
	Zip          string `json:"zip,omitempty"`
	Zip4         string `json:"zip4,omitempty"`
	Country      string `json:"country,omitempty"`
}

type placeOfUse struct {
	CustomerName *customerName `json:"customerName,omitempty"`
	Address      *address      `json:"address,omitempty"`
}

type activateRequest struct {
	Devices           []activateDevice `json:"devices"`
	AccountName       string           `json:"accountName"`
	ServicePlan       string           `json:"servicePlan,omitempty"`
	CarrierName       string           `json:"carrierName,omitempty"`
	MdnZipCode        string           `json:"mdnZipCode,omitempty"`
	CarrierIPPoolName string           `json:"carrierIpPoolName,omitempty"`
	SmsrOid           string           `json:"smsrOid,omitempty"`
	PrimaryPlaceOfUse *placeOfUse      `json:"primaryPlaceOfUse,omitempty"`
}

type activateResponse struct {
	RequestID string `json:"requestId"`
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	SessionToken string `json:"sessionToken"`
}

type callbackRegistration struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// requestStatus is the answer of the v2 request status call, read in every
// form a public source shows (see the package doc): the reference page's
// subRequests with ids as an array, the SDK's subrequests with ids as one
// object, and the devices[].deviceIds this client once assumed.
type requestStatus struct {
	RequestID   string         `json:"requestId"`
	Status      string         `json:"status"`
	SubRequests []subRequest   `json:"subRequests"`
	Subrequests []subRequest   `json:"subrequests"`
	Devices     []deviceStatus `json:"devices"`
}

// UnmarshalJSON keeps subRequests and subrequests apart: encoding/json
// matches field names case-insensitively, so without this one spelling
// could land in the other's field.
func (rs *requestStatus) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for key, v := range raw {
		var err error
		switch key {
		case "requestId":
			err = json.Unmarshal(v, &rs.RequestID)
		case "status":
			err = json.Unmarshal(v, &rs.Status)
		case "subRequests":
			err = json.Unmarshal(v, &rs.SubRequests)
		case "subrequests":
			err = json.Unmarshal(v, &rs.Subrequests)
		case "devices":
			err = json.Unmarshal(v, &rs.Devices)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// entries are the per-device answers in whichever form the body used.
func (rs *requestStatus) entries() []deviceStatus {
	var out []deviceStatus
	for _, list := range [][]subRequest{rs.SubRequests, rs.Subrequests} {
		for _, sr := range list {
			out = append(out, deviceStatus{DeviceIDs: sr.IDs, Status: sr.Status})
		}
	}
	return append(out, rs.Devices...)
}

// subRequest is one device of a request status answer.
type subRequest struct {
	IDs    deviceIDList `json:"ids"`
	Status string       `json:"status"`
}

// deviceIDList reads ids given as an array of {id, kind} (the reference
// page) or as one such object (the SDK's GIODeviceId).
type deviceIDList []deviceID

func (l *deviceIDList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*l = nil
		return nil
	case b[0] == '{':
		var d deviceID
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		*l = deviceIDList{d}
		return nil
	}
	var ds []deviceID
	if err := json.Unmarshal(b, &ds); err != nil {
		return err
	}
	*l = ds
	return nil
}

// deviceStatus is the old assumed per-device form (devices[].deviceIds),
// still read because it costs nothing.
type deviceStatus struct {
	DeviceIDs    []deviceID `json:"deviceIds"`
	Status       string     `json:"status"`
	State        string     `json:"state,omitempty"`
	ErrorCode    flexString `json:"errorCode,omitempty"`
	ErrorMessage string     `json:"errorMessage,omitempty"`
}

type listRequest struct {
	AccountName string    `json:"accountName,omitempty"`
	DeviceID    *deviceID `json:"deviceId,omitempty"`
}

type listResponse struct {
	HasMoreData bool           `json:"hasMoreData"`
	Devices     []listedDevice `json:"devices"`
}

type listedDevice struct {
	AccountName         string        `json:"accountName,omitempty"`
	DeviceIDs           []deviceID    `json:"deviceIds"`
	State               string        `json:"state,omitempty"`
	CarrierInformations []carrierInfo `json:"carrierInformations,omitempty"`
	CreatedAt           string        `json:"createdAt,omitempty"`
	LastActivationDate  string        `json:"lastActivationDate,omitempty"`
}

type carrierInfo struct {
	CarrierName string `json:"carrierName,omitempty"`
	ServicePlan string `json:"servicePlan,omitempty"`
	State       string `json:"state,omitempty"`
}

// errorEnvelope is an M2M error answer ({errorCode, errorMessage}), or the
// API gateway's {"fault":{code, message, description}} that it puts on
// refused bearer tokens.
type errorEnvelope struct {
	ErrorCode    flexString `json:"errorCode"`
	ErrorMessage string     `json:"errorMessage"`
	Fault        *fault     `json:"fault,omitempty"`
}

type fault struct {
	Code        flexString `json:"code"`
	Message     string     `json:"message"`
	Description string     `json:"description,omitempty"`
}

// profileResponse is deviceResponse.deviceProfileResponse of a callback.
type profileResponse struct {
	DeviceIdentifierCollection      []deviceID `json:"deviceIdentifierCollection,omitempty"`
	State                           string     `json:"state,omitempty"`
	ProfileStatus                   string     `json:"profileStatus,omitempty"`
	EuiccStatus                     string     `json:"euiccStatus,omitempty"`
	EuiccStatusCode                 flexString `json:"euiccStatusCode,omitempty"`
	EuiccStatusDesc                 string     `json:"euiccStatusDesc,omitempty"`
	EuiccSubAddressUpdateStatus     string     `json:"euiccSubAddressUpdateStatus,omitempty"`
	EuiccSubAddressUpdateStatusCode flexString `json:"euiccSubAddressUpdateStatusCode,omitempty"`
	EuiccSubAddressUpdateStatusDesc string     `json:"euiccSubAddressUpdateStatusDesc,omitempty"`
	CarrierName                     string     `json:"carrierName,omitempty"`
	ProfileRole                     string     `json:"profileRole,omitempty"`
}

// callbackBody is a DeviceProfileService delivery as the listener reads it:
// tolerant of the forms the docs disagree on (deviceResponse as object or
// array, counts as numbers or strings).
type callbackBody struct {
	Username       string          `json:"username"`
	Password       string          `json:"password"`
	RequestID      string          `json:"requestId"`
	DeviceIDs      []deviceID      `json:"deviceIds"`
	DeviceResponse json.RawMessage `json:"deviceResponse"`
	Status         string          `json:"status"`
}

// profile digs deviceResponse.deviceProfileResponse out of the delivery.
func (b *callbackBody) profile() (profileResponse, error) {
	var p profileResponse
	var dr struct {
		DeviceProfileResponse json.RawMessage `json:"deviceProfileResponse"`
	}
	if err := firstObject(b.DeviceResponse, &dr); err != nil {
		return p, err
	}
	err := firstObject(dr.DeviceProfileResponse, &p)
	return p, err
}

// callbackDelivery is the body the simulator sends in the documented form,
// as the activate page's example.
type callbackDelivery struct {
	Username             string             `json:"username"`
	Password             string             `json:"password"`
	RequestID            string             `json:"requestId"`
	DeviceIDs            []deviceID         `json:"deviceIds"`
	DeviceResponse       deliveryDeviceResp `json:"deviceResponse"`
	Status               string             `json:"status"`
	CallbackCount        int                `json:"callbackCount"`
	MaxCallbackThreshold int                `json:"maxCallbackThreshold"`
}

type deliveryDeviceResp struct {
	DeviceProfileResponse profileResponse `json:"deviceProfileResponse"`
}

// altCallbackDelivery is the body the simulator sends in the alternate
// form, with the types of the activate page's callback table: arrays where
// the example has objects, strings where it has numbers.
type altCallbackDelivery struct {
	Username             string          `json:"username"`
	Password             string          `json:"password"`
	RequestID            string          `json:"requestId"`
	DeviceIDs            []deviceID      `json:"deviceIds"`
	DeviceResponse       []altDeviceResp `json:"deviceResponse"`
	Status               string          `json:"status"`
	CallbackCount        string          `json:"callbackCount"`
	MaxCallbackThreshold string          `json:"maxCallbackThreshold"`
}

type altDeviceResp struct {
	DeviceProfileResponse []profileResponse `json:"deviceProfileResponse"`
}

// firstObject decodes raw into v whether raw is an object or an array of
// objects (then the first); null or absent leaves v untouched.
func firstObject(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if raw[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil {
			return err
		}
		if len(arr) == 0 {
			return nil
		}
		return firstObject(arr[0], v)
	}
	return json.Unmarshal(raw, v)
}

// flexString reads a JSON string, number or boolean as text: the docs call
// errorCode a string of digits and services send either form.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case b[0] == '{' || b[0] == '[':
		// Not a scalar: keep nothing rather than refuse the whole answer.
		*f = ""
	default:
		if _, err := strconv.ParseFloat(string(b), 64); err != nil && string(b) != "true" && string(b) != "false" {
			return err
		}
		*f = flexString(b)
	}
	return nil
}
