package thingspace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers/simkit"
)

// simSession logs in to a simulator by hand and returns the headers of an
// M2M call.
func simSession(t *testing.T, base string) http.Header {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+pathToken, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.SetBasicAuth(SimKey, SimSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	doJSON(t, req, http.StatusOK, &tok)
	req, _ = http.NewRequest(http.MethodPost, base+pathLogin, strings.NewReader(`{"username":"`+SimUsername+`","password":"`+SimPassword+`"}`))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	var sess loginResponse
	doJSON(t, req, http.StatusOK, &sess)
	return http.Header{
		"Authorization": {"Bearer " + tok.AccessToken}, "Vz-M2m-Token": {sess.SessionToken}, "Content-Type": {"application/json"},
	}
}

func doJSON(t *testing.T, req *http.Request, want int, v any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d", req.Method, req.URL.Path, resp.StatusCode, want)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}

func call(t *testing.T, h http.Header, method, u, body string) (int, errorEnvelope) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header = h.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env errorEnvelope
	_ = json.NewDecoder(resp.Body).Decode(&env)
	return resp.StatusCode, env
}

func TestSimulatorValidatesActivate(t *testing.T) {
	sim := NewSimulator(SimOptions{})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	h := simSession(t, srv.URL)
	dev := func(ids ...string) string {
		var parts []string
		for i := 0; i+1 < len(ids); i += 2 {
			parts = append(parts, fmt.Sprintf(`{"kind":%q,"id":%q}`, ids[i], ids[i+1]))
		}
		return `{"deviceIds":[` + strings.Join(parts, ",") + `]}`
	}
	good := dev("eid", testEID, "iccid", "89012600000000000011")
	body := func(account, devices, extra string) string {
		return fmt.Sprintf(`{"accountName":%q,"devices":[%s]%s}`, account, devices, extra)
	}
	pou := func(state, zip, country string) string {
		return fmt.Sprintf(`,"primaryPlaceOfUse":{"customerName":{"firstName":"Ada","lastName":"Lovelace"},"address":{"addressLine1":"1 Main","city":"Austin","state":%q,"zip":%q,"country":%q}}`, state, zip, country)
	}
	many := strings.TrimSuffix(strings.Repeat(good+",", 101), ",")
	for _, tc := range []struct {
		name, body, want string
	}{
		{"ok", body(testAccount, good, ""), ""},
		{"ok with place of use", body(testAccount, dev("eid", "89049032123451234512345678901236"), pou("TX", "78701", "US")), ""},
		{"no account", body("", good, ""), "accountName is required"},
		{"bad account", body("acct-1", good, ""), "accountName must"},
		{"no devices", body(testAccount, "", ""), "devices is required"},
		{"101 devices", body(testAccount, many, ""), "at most 100"},
		{"no eid", body(testAccount, dev("iccid", "89012600000000000011"), ""), "exactly one id of kind eid"},
		{"short eid", body(testAccount, dev("eid", "8904903212345"), ""), "is not valid"},
		{"unknown kind", body(testAccount, dev("eid", testEID, "msisdn", "1"), ""), "not one of"},
		{"duplicate eid", body(testAccount, good+","+good, ""), "appears twice"},
		{"bad state", body(testAccount, good, pou("Texas", "78701", "US")), "two-letter"},
		{"bad zip", body(testAccount, good, pou("TX", "787", "US")), "5-digit"},
		{"bad country", body(testAccount, good, pou("TX", "78701", "CA")), `"US" or "USA"`},
		{"no customer name", body(testAccount, good, `,"primaryPlaceOfUse":{"address":{}}`), "customerName is required"},
		{"no address", body(testAccount, good, `,"primaryPlaceOfUse":{"customerName":{"firstName":"A","lastName":"B"}}`), "address is required"},
		{"bad mdn zip", body(testAccount, good, `,"mdnZipCode":"1"`), "mdnZipCode"},
		{"malformed", `{"accountName":`, "malformed JSON"},
		{"wrong type", `{"devices":"x"}`, "malformed JSON"},
	} {
		code, env := call(t, h, http.MethodPost, srv.URL+pathActivate, tc.body)
		switch {
		case tc.want == "" && code != http.StatusOK:
			t.Errorf("%s: HTTP %d %+v", tc.name, code, env)
		case tc.want != "" && (code != http.StatusBadRequest || env.ErrorCode != "400" || !strings.Contains(env.ErrorMessage, tc.want)):
			t.Errorf("%s: HTTP %d %+v, want 400 about %q", tc.name, code, env, tc.want)
		}
	}
	// Refused requests count as processed for their EIDs too.
	if n := sim.Kit().ProvisionCount(testEID); n < 10 {
		t.Errorf("ProvisionCount %d: refused requests not counted", n)
	}
	hdr := h.Clone()
	hdr.Set("Content-Type", "text/plain")
	if code, env := call(t, hdr, http.MethodPost, srv.URL+pathActivate, body(testAccount, good, "")); code != http.StatusUnsupportedMediaType || env.ErrorCode != "415" {
		t.Errorf("text/plain: HTTP %d %+v, want 415 in the errorCode envelope", code, env)
	}
	// Required on GETs as well.
	hdr.Del("Content-Type")
	if code, env := call(t, hdr, http.MethodGet, srv.URL+pathAccountsV2+testAccount+"/requests/x/status", ""); code != http.StatusUnsupportedMediaType || env.ErrorCode != "415" {
		t.Errorf("GET without Content-Type: HTTP %d %+v, want 415", code, env)
	}
}

func TestSimulatorAuth(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	sim := NewSimulator(SimOptions{Now: clk.Now, SessionIdle: time.Minute})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	h := simSession(t, srv.URL)
	list := `{"accountName":"` + testAccount + `"}`
	if code, _ := call(t, h, http.MethodPost, srv.URL+pathList, list); code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	for name, mod := range map[string]func(http.Header){
		"no bearer":   func(h http.Header) { h.Del("Authorization") },
		"bad bearer":  func(h http.Header) { h.Set("Authorization", "Bearer nope") },
		"no session":  func(h http.Header) { h.Del("VZ-M2M-Token") },
		"bad session": func(h http.Header) { h.Set("VZ-M2M-Token", "nope") },
	} {
		hh := h.Clone()
		mod(hh)
		code, env := call(t, hh, http.MethodPost, srv.URL+pathList, list)
		// The gateway refuses bearer tokens in its fault envelope; the M2M
		// service refuses sessions in its own.
		gateway := strings.Contains(name, "bearer")
		switch {
		case code != http.StatusUnauthorized:
			t.Errorf("%s: HTTP %d", name, code)
		case gateway && (env.Fault == nil || env.Fault.Code == "" || env.Fault.Message == ""):
			t.Errorf("%s: %+v, want the gateway fault envelope", name, env)
		case !gateway && env.ErrorCode != "401":
			t.Errorf("%s: %+v, want errorCode 401", name, env)
		}
	}
	clk.Advance(59 * time.Second) // use keeps the session alive
	if code, _ := call(t, h, http.MethodPost, srv.URL+pathList, list); code != http.StatusOK {
		t.Errorf("session used within its idle time: %d", code)
	}
	clk.Advance(61 * time.Second)
	if code, _ := call(t, h, http.MethodPost, srv.URL+pathList, list); code != http.StatusUnauthorized {
		t.Errorf("idle session: %d, want 401", code)
	}
	h = simSession(t, srv.URL)
	sim.ExpireTokens()
	if code, _ := call(t, h, http.MethodPost, srv.URL+pathList, list); code != http.StatusUnauthorized {
		t.Errorf("after ExpireTokens: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+pathToken, strings.NewReader("grant_type=client_credentials"))
	req.SetBasicAuth(SimKey, "wrong")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	doJSON(t, req, http.StatusUnauthorized, nil)
}

func TestSimulatorOtherCalls(t *testing.T) {
	sim := NewSimulator(SimOptions{})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	h := simSession(t, srv.URL)
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"unknown request", http.MethodGet, pathAccountsV2 + testAccount + "/requests/nope/status", "", 404},
		{"register bad url", http.MethodPost, pathCallbacks + testAccount, `{"name":"DeviceProfileService","url":"not a url"}`, 400},
		{"register no name", http.MethodPost, pathCallbacks + testAccount, `{"url":"http://x"}`, 400},
		{"register bad account", http.MethodPost, pathCallbacks + "x", `{"name":"DeviceProfileService","url":"http://x"}`, 400},
		{"register", http.MethodPost, pathCallbacks + testAccount, `{"name":"DeviceProfileService","url":"http://127.0.0.1:1/cb"}`, 200},
		{"list bad kind", http.MethodPost, pathList, `{"deviceId":{"kind":"sim","id":"1"}}`, 400},
		{"list bad account", http.MethodPost, pathList, `{"accountName":"x"}`, 400},
		{"unknown path", http.MethodGet, "/api/m2m/v1/nothing", "", 404},
	} {
		if code, env := call(t, h, tc.method, srv.URL+tc.path, tc.body); code != tc.want || (tc.want >= 400 && env.ErrorMessage == "") {
			t.Errorf("%s: HTTP %d %+v, want %d with an envelope", tc.name, code, env, tc.want)
		}
	}
	if got := sim.CallbackURL(testAccount); got != "http://127.0.0.1:1/cb" {
		t.Errorf("registered %q", got)
	}
	// Drift hooks on unknown EIDs report false; Preload makes a record.
	if sim.Forget(testEID) || sim.SetState(testEID, StateSuspend) || sim.Alter(testEID, "iccid", "1") {
		t.Errorf("hooks claimed an unknown EID")
	}
	sim.Preload(testAccount, testEID, "")
	if sim.Count() != 1 || !sim.Alter(testEID, "mdn", "2015550199") || sim.Alter(testEID, "color", "x") {
		t.Errorf("preload/alter")
	}
}

// TestSimulatorSurvivesGarbage sends random bodies to every endpoint: the
// simulator must answer, never panic.
func TestSimulatorSurvivesGarbage(t *testing.T) {
	sim := NewSimulator(SimOptions{})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	h := simSession(t, srv.URL)
	rng := rand.New(rand.NewPCG(1, 2))
	fragments := []string{`{`, `}`, `[`, `]`, `"devices"`, `:`, `,`, `null`, `"deviceIds"`, `"kind"`, `"eid"`, `"id"`, `1`, `"primaryPlaceOfUse"`, `"customerName"`, `"address"`, `{}`, `[]`, `"accountName"`, `"deviceId"`}
	paths := []string{pathActivate, pathList, pathCallbacks + testAccount, pathLogin}
	for i := 0; i < 300; i++ {
		var b bytes.Buffer
		for n := rng.IntN(20); n > 0; n-- {
			b.WriteString(fragments[rng.IntN(len(fragments))])
		}
		code, _ := call(t, h, http.MethodPost, srv.URL+paths[i%len(paths)], b.String())
		if code >= 500 {
			t.Fatalf("%q to %s: HTTP %d", b.String(), paths[i%len(paths)], code)
		}
	}
	// Structurally valid JSON with nulls where objects belong.
	for _, body := range []string{
		`{"accountName":"` + testAccount + `","devices":[null]}`,
		`{"accountName":"` + testAccount + `","devices":[{"deviceIds":[{"kind":"eid","id":"` + testEID + `"}]}],"primaryPlaceOfUse":{"customerName":null,"address":null}}`,
		`{"accountName":"` + testAccount + `","devices":[{"deviceIds":null}]}`,
	} {
		if code, _ := call(t, h, http.MethodPost, srv.URL+pathActivate, body); code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", body, code)
		}
	}
}

// TestSimulatorForms checks the wire shapes of each form directly, not
// through the client (which accepts both and so would hide a mix-up).
func TestSimulatorForms(t *testing.T) {
	for _, tc := range []struct {
		forms                 simkit.Forms
		statusKey, idsStart   string
		listState, deviceWide string
	}{
		{simkit.Documented, `"subRequests"`, `"ids":[{"id":"8914`, `"state":"Activate"`, ""},
		{simkit.Alternate, `"subrequests"`, `"ids":{"id":"` + testEID, `"state":"active"`, `"state":"active","carrierInformations"`},
	} {
		sim := NewSimulator(SimOptions{Forms: tc.forms})
		srv := httptest.NewServer(sim)
		h := simSession(t, srv.URL)
		var ar activateResponse
		req, _ := http.NewRequest(http.MethodPost, srv.URL+pathActivate, strings.NewReader(`{"accountName":"`+testAccount+`","devices":[{"deviceIds":[{"kind":"eid","id":"`+testEID+`"}]}]}`))
		req.Header = h.Clone()
		doJSON(t, req, http.StatusOK, &ar)
		raw := func(method, path, body string) string {
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			req.Header = h.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
		st := raw(http.MethodGet, pathAccountsV2+testAccount+"/requests/"+ar.RequestID+"/status", "")
		if !strings.Contains(st, tc.statusKey) || !strings.Contains(st, tc.idsStart) {
			t.Errorf("%s status: %s", tc.forms, st)
		}
		list := raw(http.MethodPost, pathList, `{"accountName":"`+testAccount+`","deviceId":{"kind":"eid","id":"`+testEID+`"}}`)
		if !strings.Contains(list, tc.listState) || (tc.deviceWide != "" && !strings.Contains(list, tc.deviceWide)) ||
			(tc.deviceWide == "" && strings.Contains(list, `"state":"Activate","carrierInformations"`)) {
			t.Errorf("%s list: %s", tc.forms, list)
		}
		sim.Close()
		srv.Close()
	}
}
