package thingspace

import (
	"bytes"
	"encoding/json"
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

// requestStatus is the assumed answer of the v2 request status call (see
// the package doc).
type requestStatus struct {
	RequestID   string         `json:"requestId"`
	AccountName string         `json:"accountName,omitempty"`
	Status      string         `json:"status"`
	Devices     []deviceStatus `json:"devices"`
}

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

// errorEnvelope is every ThingSpace error answer.
type errorEnvelope struct {
	ErrorCode    flexString `json:"errorCode"`
	ErrorMessage string     `json:"errorMessage"`
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

// callbackDelivery is the body the simulator sends, as the docs' example.
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
