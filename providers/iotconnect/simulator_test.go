package iotconnect_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/simkit"
)

// simServer runs a simulator and returns it with a bearer token for it.
func simServer(t *testing.T, opts iotconnect.SimOptions) (*iotconnect.Simulator, *httptest.Server, string) {
	t.Helper()
	sim := iotconnect.NewSimulator(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	status, body := send(t, srv, "POST", iotconnect.SimTokenPath, "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {iotconnect.SimClientID},
		"client_secret": {iotconnect.SimClientSecret},
	}.Encode())
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	return sim, srv, body["access_token"].(string)
}

// send makes one raw request; a body starting with "{" is JSON, anything
// else a form. It returns the status and the decoded JSON object.
func send(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, raw)
	}
	return resp.StatusCode, m
}

// firstError returns errors[0] of an envelope, failing if the envelope is
// not the documented shape.
func firstError(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	if _, ok := m["name"].(string); !ok {
		t.Fatalf("envelope without name: %v", m)
	}
	if _, ok := m["message"].(string); !ok {
		t.Fatalf("envelope without message: %v", m)
	}
	errs, ok := m["errors"].([]any)
	if !ok || len(errs) == 0 {
		t.Fatalf("envelope without errors: %v", m)
	}
	return errs[0].(map[string]any)
}

func regBody(eid string) string {
	return `{"eid":"` + eid + `","cmp":"IOTA_EU","euiccAgreementId":"AGR-DEMO-0001","localeId":"en_GB"}`
}

func TestSimTokenEndpoint(t *testing.T) {
	_, srv, _ := simServer(t, iotconnect.SimOptions{TokenTTL: 90 * time.Second})
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	status, m := send(t, srv, "POST", "/oauth2/token", "", form("grant_type", "client_credentials", "client_id", "demo-iotconnect", "client_secret", "demo-iotconnect-secret"))
	if status != 200 || m["expires_in"].(float64) != 90 || m["token_type"] != "Bearer" || m["access_token"] == "" {
		t.Errorf("token answer %d %v", status, m)
	}
	if status, m := send(t, srv, "POST", "/oauth2/token", "", form("grant_type", "client_credentials", "client_id", "demo-iotconnect", "client_secret", "nope")); status != 401 || m["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", status, m)
	}
	if status, m := send(t, srv, "POST", "/oauth2/token", "", form("grant_type", "password")); status != 400 || m["error"] != "unsupported_grant_type" {
		t.Errorf("wrong grant: %d %v", status, m)
	}
	// Basic client authentication, as RFC 6749 allows.
	req, _ := http.NewRequest("POST", srv.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-iotconnect", "demo-iotconnect-secret")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("basic auth: %d", resp.StatusCode)
	}
}

func TestSimAuth(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sim, srv, tok := simServer(t, iotconnect.SimOptions{TokenTTL: time.Minute, Now: clock})
	path := "/iot-connect/subscriptions/v1/euiccs/" + eid(1)
	for name, token := range map[string]string{"missing": "", "unknown": "abc"} {
		status, m := send(t, srv, "GET", path, token, "")
		if status != 401 || firstError(t, m)["errorCode"] != "INVALID_TOKEN" {
			t.Errorf("%s token: %d %v", name, status, m)
		}
	}
	if status, _ := send(t, srv, "GET", path, tok, ""); status != 404 {
		t.Fatalf("valid token: %d", status)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if status, _ := send(t, srv, "GET", path, tok, ""); status != 401 {
		t.Errorf("expired token: %d, want 401", status)
	}
	_, _, tok2 := simServer(t, iotconnect.SimOptions{}) // another simulator's token means nothing here
	if status, _ := send(t, srv, "GET", path, tok2, ""); status != 401 {
		t.Errorf("foreign token: %d, want 401", status)
	}
	if status, _ := send(t, srv, "POST", "/iot-connect/subscriptions/v1/euiccs", "", regBody(eid(1))); status != 401 || sim.Kit().ProvisionCount(eid(1)) != 0 {
		t.Errorf("unauthenticated registration: %d, processed %d", status, sim.Kit().ProvisionCount(eid(1)))
	}
}

func TestSimExpireTokens(t *testing.T) {
	sim, srv, tok := simServer(t, iotconnect.SimOptions{})
	path := "/iot-connect/subscriptions/v1/euiccs/" + eid(1)
	sim.ExpireTokens()
	if status, _ := send(t, srv, "GET", path, tok, ""); status != 401 {
		t.Errorf("after ExpireTokens: %d, want 401", status)
	}
}

func TestSimRegisterValidation(t *testing.T) {
	sim, srv, tok := simServer(t, iotconnect.SimOptions{})
	const p = "/iot-connect/subscriptions/v1/euiccs"
	tests := []struct {
		name  string
		body  string
		codes []string // errorCode of each error, in order
		paths []string
	}{
		{"not json", `{"eid":`, []string{"INVALID_BODY"}, []string{""}},
		{"wrong type", `{"eid":123}`, []string{"INVALID_BODY"}, []string{""}},
		{"empty", `{}`, []string{"REQUIRED", "REQUIRED", "REQUIRED", "REQUIRED"}, []string{"eid", "cmp", "euiccAgreementId", "localeId"}},
		{"everything wrong", `{"eid":"12ab","cmp":"X","domainId":"short","euiccAgreementId":"a","localeId":"b"}`,
			[]string{"INVALID_FORMAT", "INVALID_VALUE", "INVALID_FORMAT"}, []string{"eid", "cmp", "domainId"}},
		{"33 digits", strings.Replace(regBody(eid(1)), `","cmp`, `5","cmp`, 1), []string{"INVALID_FORMAT"}, []string{"eid"}},
		{"eight groups", `{"eid":"` + eid(1) + `","cmp":"ARQIA_BR","domainId":"aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee-ffffffff-gggggggg-hhhhhhhh","euiccAgreementId":"a","localeId":"b"}`,
			[]string{"INVALID_FORMAT"}, []string{"domainId"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, m := send(t, srv, "POST", p, tok, tc.body)
			firstError(t, m)
			errs := m["errors"].([]any)
			if status != 400 || len(errs) != len(tc.codes) {
				t.Fatalf("%d %v, want 400 with %d errors", status, m, len(tc.codes))
			}
			for i, e := range errs {
				em := e.(map[string]any)
				path, _ := em["path"].(string)
				if em["errorCode"] != tc.codes[i] || path != tc.paths[i] || em["message"] == "" {
					t.Errorf("error %d: %v, want %s at %q", i, em, tc.codes[i], tc.paths[i])
				}
			}
		})
	}
	if sim.Count() != 0 {
		t.Errorf("invalid registrations stored")
	}
	// A validation failure with an EID still counts as a provisioning
	// request for that EID.
	if n := sim.Kit().ProvisionCount("12ab"); n != 1 {
		t.Errorf("ProvisionCount(12ab) = %d, want 1", n)
	}
	// Seven groups is the most the pattern allows.
	ok := `{"eid":"` + eid(2) + `","cmp":"THINGSPACE_US","domainId":"aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee-ffffffff-gggggggg","euiccAgreementId":"a","localeId":"b"}`
	if status, m := send(t, srv, "POST", p, tok, ok); status != 202 {
		t.Errorf("seven domain groups: %d %v", status, m)
	}
	status, m := send(t, srv, "POST", p, tok, ok)
	if status != 400 || firstError(t, m)["errorCode"] != iotconnect.CodeAlreadyRegistered {
		t.Errorf("second registration: %d %v", status, m)
	}
}

var (
	imsiRE   = regexp.MustCompile(`^[0-9]{6,15}$`)
	iccidRE  = regexp.MustCompile(`^89[0-9]{16,18}$`)
	msisdnRE = regexp.MustCompile(`^[0-9]{5,15}$`)
)

func luhnOK(s string) bool {
	sum := 0
	for i := range len(s) {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// TestSimIdentifiers: assigned identifiers have the documented formats, are
// unique, and depend only on the EID.
func TestSimIdentifiers(t *testing.T) {
	a := iotconnect.NewSimulator(iotconnect.SimOptions{})
	b := iotconnect.NewSimulator(iotconnect.SimOptions{})
	seen := map[string]string{}
	const n = 2000
	for i := range n {
		ra, err := a.Preload(iotconnect.Registration{EID: eid(i), CMP: "IOTA_EU", EUICCAgreementID: "a", LocaleID: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if !imsiRE.MatchString(ra.IMSI) || !iccidRE.MatchString(ra.ICCID) || !luhnOK(ra.ICCID) ||
			!msisdnRE.MatchString(ra.MSISDN) || !iotconnect.ValidSubscriptionID(ra.SubscriptionID) {
			t.Fatalf("bad identifiers %+v", ra)
		}
		for kind, v := range map[string]string{"imsi": ra.IMSI, "iccid": ra.ICCID, "msisdn": ra.MSISDN, "sub": ra.SubscriptionID} {
			if prev, dup := seen[kind+v]; dup {
				t.Fatalf("%s %s assigned to %s and %s", kind, v, prev, ra.EID)
			}
			seen[kind+v] = ra.EID
		}
	}
	// Registered in the opposite order, the same EIDs get the same identifiers.
	for i := n - 1; i >= 0; i-- {
		rb, err := b.Preload(iotconnect.Registration{EID: eid(i), CMP: "IOTA_EU", EUICCAgreementID: "a", LocaleID: "b"})
		if err != nil {
			t.Fatal(err)
		}
		ra, _ := a.Get(eid(i))
		if ra != rb {
			t.Fatalf("EID %s: %+v vs %+v", eid(i), ra, rb)
		}
	}
	if a.Count() != n {
		t.Errorf("Count = %d", a.Count())
	}
}

// TestSimResources checks the GET shapes: a pending eUICC, a provisioned
// one with and without include=, and the documented subscription resource.
func TestSimResources(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sim, srv, tok := simServer(t, iotconnect.SimOptions{AsyncDelay: time.Minute, Now: clock})
	e := eid(5)
	if status, m := send(t, srv, "POST", "/iot-connect/subscriptions/v1/euiccs", tok, regBody(e)); status != 202 ||
		!imsiRE.MatchString(m["imsi"].(string)) || !iccidRE.MatchString(m["iccid"].(string)) || !msisdnRE.MatchString(m["msisdn"].(string)) {
		t.Fatalf("register: %d %v", status, m)
	}
	euicc := "/iot-connect/subscriptions/v1/euiccs/" + e
	full := euicc + "?include=iotSubscription,profiles,connectivitySubscriptions"

	_, m := send(t, srv, "GET", full, tok, "")
	rel := m["relationships"].(map[string]any)
	if _, has := rel["iotSubscription"]; has || len(rel["profiles"].([]any)) != 0 || len(rel["connectivitySubscriptions"].([]any)) != 0 {
		t.Errorf("pending eUICC shows a subscription: %v", m)
	}
	if attrs := m["attributes"].(map[string]any); len(attrs) != 1 || attrs["eid"] != e {
		t.Errorf("pending eUICC attributes %v, want the eid alone", attrs)
	}
	rec, _ := sim.Get(e)
	if status, _ := send(t, srv, "GET", "/iot-connect/subscriptions/v1/iot-subscriptions/"+rec.SubscriptionID, tok, ""); status != 404 {
		t.Errorf("pending subscription readable: %d", status)
	}

	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()

	_, m = send(t, srv, "GET", full, tok, "")
	rel = m["relationships"].(map[string]any)
	sub := rel["iotSubscription"].(map[string]any)
	if sub["url"] != "/iot-connect/subscriptions/v1/iot-subscriptions/"+rec.SubscriptionID || sub["attributes"].(map[string]any)["id"] != rec.SubscriptionID {
		t.Errorf("iotSubscription %v", sub)
	}
	// Documented form: embedded attributes hold the required properties
	// only, so no mode; the eUICC's own are the three get-e-uicc lists.
	cs := rel["connectivitySubscriptions"].([]any)[0].(map[string]any)["attributes"].(map[string]any)
	if len(cs) != 3 || cs["iccid"] != rec.ICCID || cs["imsi"] != rec.IMSI || cs["msisdn"] != rec.MSISDN {
		t.Errorf("embedded connectivity %v, want imsi, iccid and msisdn only", cs)
	}
	if a := sub["attributes"].(map[string]any); len(a) != 1 {
		t.Errorf("embedded iotSubscription attributes %v, want the id only", a)
	}
	if attrs := m["attributes"].(map[string]any); len(attrs) != 3 || attrs["enabledProfile"] != rec.ICCID || attrs["bootstrapProfile"] != rec.ICCID {
		t.Errorf("attributes %v, want eid, enabledProfile, bootstrapProfile only", attrs)
	}

	// Without include=, relationships are URLs only.
	_, m = send(t, srv, "GET", euicc, tok, "")
	rel = m["relationships"].(map[string]any)
	if _, has := rel["iotSubscription"].(map[string]any)["attributes"]; has {
		t.Errorf("attributes without include: %v", rel)
	}
	if _, has := rel["connectivitySubscriptions"].([]any)[0].(map[string]any)["attributes"]; has {
		t.Errorf("attributes without include: %v", rel)
	}

	// The documented subscription resource.
	_, m = send(t, srv, "GET", "/iot-connect/subscriptions/v1/iot-subscriptions/"+rec.SubscriptionID+"?include=euiccs&include=profiles,connectivitySubscriptions", tok, "")
	attrs := m["attributes"].(map[string]any)
	if attrs["id"] != rec.SubscriptionID || attrs["subscriptionType"] != "IOT_CONNECT" || attrs["domain"].(map[string]any)["domainId"] != iotconnect.SimDomainID {
		t.Errorf("subscription attributes %v", attrs)
	}
	rel = m["relationships"].(map[string]any)
	eu := rel["euiccs"].([]any)[0].(map[string]any)
	if eu["url"] != euicc || eu["attributes"].(map[string]any)["eid"] != e {
		t.Errorf("euiccs %v", eu)
	}
	pr := rel["profiles"].([]any)[0].(map[string]any)["attributes"].(map[string]any)
	if pr["iccid"] != rec.ICCID || pr["profileType"] != "VIRTUAL_PROFILE" || pr["isEnabled"] != true {
		t.Errorf("profile %v", pr)
	}
	// The mode is where a client that needs it reads it.
	_, m = send(t, srv, "GET", "/iot-connect/subscriptions/v1/iot-subscriptions/"+rec.SubscriptionID+"?include=connectivitySubscriptions", tok, "")
	rel = m["relationships"].(map[string]any)
	cs = rel["connectivitySubscriptions"].([]any)[0].(map[string]any)["attributes"].(map[string]any)
	if cs["mode"] != "ACTIVE" || cs["imsi"] != rec.IMSI {
		t.Errorf("subscription's connectivity %v, want its mode", cs)
	}
	if _, has := rel["euiccs"].([]any)[0].(map[string]any)["attributes"]; has {
		t.Errorf("euiccs attributes without include=euiccs: %v", rel["euiccs"])
	}
}

// TestSimAlternateForm: complete embedded attributes, and the agreement on
// the eUICC; still nothing get-e-uicc does not name besides.
func TestSimAlternateForm(t *testing.T) {
	sim, srv, tok := simServer(t, iotconnect.SimOptions{Forms: simkit.Alternate})
	e := eid(6)
	if status, _ := send(t, srv, "POST", "/iot-connect/subscriptions/v1/euiccs", tok, regBody(e)); status != 202 {
		t.Fatalf("register: %d", status)
	}
	rec, _ := sim.Get(e)
	_, m := send(t, srv, "GET", "/iot-connect/subscriptions/v1/euiccs/"+e+"?include=iotSubscription,profiles,connectivitySubscriptions", tok, "")
	attrs := m["attributes"].(map[string]any)
	if len(attrs) != 4 || attrs["euiccAgreementId"] != "AGR-DEMO-0001" || attrs["enabledProfile"] != rec.ICCID {
		t.Errorf("attributes %v, want eid, enabledProfile, bootstrapProfile, euiccAgreementId", attrs)
	}
	rel := m["relationships"].(map[string]any)
	cs := rel["connectivitySubscriptions"].([]any)[0].(map[string]any)["attributes"].(map[string]any)
	if cs["mode"] != "ACTIVE" || cs["imsi"] != rec.IMSI {
		t.Errorf("embedded connectivity %v, want it complete", cs)
	}
	if a := rel["iotSubscription"].(map[string]any)["attributes"].(map[string]any); a["subscriptionType"] != "IOT_CONNECT" || a["id"] != rec.SubscriptionID {
		t.Errorf("embedded iotSubscription %v, want it complete", a)
	}
}

func TestSimReadErrors(t *testing.T) {
	_, srv, tok := simServer(t, iotconnect.SimOptions{})
	tests := []struct {
		path   string
		status int
		code   string
	}{
		{"/iot-connect/subscriptions/v1/euiccs/123", 400, "INVALID_FORMAT"},
		{"/iot-connect/subscriptions/v1/euiccs/" + eid(1) + "?include=profiles,sims", 400, "INVALID_VALUE"},
		{"/iot-connect/subscriptions/v1/euiccs/" + eid(1), 404, "EUICC_NOT_FOUND"},
		{"/iot-connect/subscriptions/v1/iot-subscriptions/58ABCDEFGHJKLMNPQR", 400, "INVALID_FORMAT"},
		{"/iot-connect/subscriptions/v1/iot-subscriptions/8546U5LX6B24P3AZ8X?include=iotSubscription", 400, "INVALID_VALUE"},
		{"/iot-connect/subscriptions/v1/iot-subscriptions/8546U5LX6B24P3AZ8X", 404, "SUBSCRIPTION_NOT_FOUND"},
		{"/iot-connect/subscriptions/v1/nothing", 404, "NOT_FOUND"},
	}
	for _, tc := range tests {
		status, m := send(t, srv, "GET", tc.path, tok, "")
		if status != tc.status || firstError(t, m)["errorCode"] != tc.code {
			t.Errorf("GET %s: %d %v, want %d %s", tc.path, status, m, tc.status, tc.code)
		}
	}
}

func TestSimOperations(t *testing.T) {
	sim, srv, tok := simServer(t, iotconnect.SimOptions{})
	send(t, srv, "POST", "/iot-connect/subscriptions/v1/euiccs", tok, regBody(eid(1)))
	send(t, srv, "GET", "/iot-connect/subscriptions/v1/euiccs/"+eid(1), tok, "")
	send(t, srv, "GET", "/iot-connect/subscriptions/v1/iot-subscriptions/8546U5LX6B24P3AZ8X", tok, "")
	got := sim.Kit().Stats().Requests
	for op, n := range map[string]int{simkit.OpToken: 1, simkit.OpProvision: 1, simkit.OpStatus: 1, simkit.OpLookup: 1} {
		if got[op] != n {
			t.Errorf("requests[%s] = %d, want %d (%v)", op, got[op], n, got)
		}
	}
}

// FuzzSimRegister: no body makes the simulator panic or answer anything
// but 202 or a 400 envelope.
func FuzzSimRegister(f *testing.F) {
	for _, s := range []string{"", "{}", "null", "[]", regBody(eid(1)), `{"eid":null}`, `{"eid":"` + strings.Repeat("9", 5000) + `"}`, "\xff\xfe", `{"eid":"1"}{"eid":"2"}`} {
		f.Add(s)
	}
	sim := iotconnect.NewSimulator(iotconnect.SimOptions{})
	srv := httptest.NewServer(sim)
	f.Cleanup(srv.Close)
	resp, err := http.PostForm(srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {iotconnect.SimClientID}, "client_secret": {iotconnect.SimClientSecret}})
	if err != nil {
		f.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	hc := srv.Client()
	hc.Timeout = 5 * time.Second
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest("POST", srv.URL+"/iot-connect/subscriptions/v1/euiccs", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 202 && resp.StatusCode != 400 {
			t.Fatalf("status %d for %q", resp.StatusCode, body)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("answer %q is not JSON", raw)
		}
	})
}
