package asavie

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers/simkit"
)

// simToken gets a token from the simulator with the default credentials.
func simToken(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.PostForm(base+tokenPath, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {SimClientID}, "client_secret": {SimClientSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 || tr.AccessToken == "" || tr.TokenType != "bearer" || tr.ExpiresIn != 3600 {
		t.Fatalf("token: %d %+v %v", resp.StatusCode, tr, err)
	}
	return tr.AccessToken
}

type simCall struct {
	method, path, body string
	header             map[string]string
}

func (c simCall) do(t *testing.T, base, token string) (int, envelopeOut) {
	t.Helper()
	req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	req.Header.Set("Authorization", "Bearer "+token)
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env envelopeOut
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s %s: answer is not an envelope (%v): %s", c.method, c.path, err, b)
	}
	env.raw = b
	return resp.StatusCode, env
}

// envelopeOut reads what the simulator writes, in either form.
type envelopeOut struct {
	Success          *bool
	Code             int
	ErrorCode        int
	ErrorSubCode     int
	ErrorDescription string
	StatusUrl        string
	Meta             flexMeta
	Data             json.RawMessage
	raw              []byte
}

func TestSimulatorValidation(t *testing.T) {
	for _, forms := range []simkit.Forms{simkit.Documented, simkit.Alternate} {
		t.Run(forms.String(), func(t *testing.T) { simulatorValidation(t, forms) })
	}
}

func simulatorValidation(t *testing.T, forms simkit.Forms) {
	sim := NewSimulator(SimOptions{Forms: forms})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	tok := simToken(t, srv.URL)
	const sims = "/v1/accounts/acme/hardware/sims"
	cases := []struct {
		name       string
		call       simCall
		token      string
		status     int
		code       int
		errorCode  int
		subCode    int
		descHas    string
		provisions string // identifier counted, if any
	}{
		{name: "MSISDN CLI", call: simCall{method: "POST", path: sims, body: `{"CLI":"(+44)7700900123"}`}, status: 202, code: 202, provisions: "(+44)7700900123"},
		{name: "bracketed without plus", call: simCall{method: "POST", path: sims, body: `{"CLI":"(44)7700900124"}`}, status: 202, code: 202},
		{name: "IMSI CLI", call: simCall{method: "POST", path: sims, body: `{"CLI":"234150123456789","SIMNumber":"89441000000000000034"}`}, status: 202, code: 202},
		{name: "duplicate", call: simCall{method: "POST", path: sims, body: `{"CLI":"(+44)7700900123"}`}, status: 200, code: 409, errorCode: 3009, descHas: "already exists"},
		{name: "status of nothing by cmdid", call: simCall{method: "GET", path: sims + "/1/status?cmdid=Zm9v%2Fbar%3D%3D"}, status: 404, code: 404, errorCode: 2404, descHas: "Zm9v/bar=="},
		{name: "E.164 CLI", call: simCall{method: "POST", path: sims, body: `{"CLI":"+447700900123"}`}, status: 400, code: 400, errorCode: 1001, subCode: 1, descHas: "regular expression", provisions: "+447700900123"},
		{name: "IMSI too short", call: simCall{method: "POST", path: sims, body: `{"CLI":"2341501234567"}`}, status: 400, code: 400, errorCode: 1001, subCode: 1},
		{name: "no CLI", call: simCall{method: "POST", path: sims, body: `{"SIMNumber":"89441000000000000034"}`}, status: 400, code: 400, errorCode: 1001, subCode: 1, descHas: "required"},
		{name: "SIMNumber letters", call: simCall{method: "POST", path: sims, body: `{"CLI":"(+44)7700900125","SIMNumber":"8944ABC"}`}, status: 400, code: 400, errorCode: 1001, subCode: 2},
		{name: "description too long", call: simCall{method: "POST", path: sims, body: `{"CLI":"(+44)7700900126","Description":"` + strings.Repeat("x", 256) + `"}`}, status: 400, code: 400, errorCode: 1002, subCode: 3, descHas: "Description"},
		{name: "bad State enum", call: simCall{method: "POST", path: sims, body: `{"CLI":"(+44)7700900127","State":"dormant"}`}, status: 400, code: 400, errorCode: 1000},
		{name: "malformed JSON", call: simCall{method: "POST", path: sims, body: `{"CLI":`}, status: 400, code: 400, errorCode: 1000},
		{name: "binary garbage", call: simCall{method: "POST", path: sims, body: "\x00\xff{[\"\\"}, status: 400, code: 400, errorCode: 1000},
		{name: "unknown account", call: simCall{method: "POST", path: "/v1/accounts/unknown-x/hardware/sims", body: `{"CLI":"(+44)7700900128"}`}, status: 404, code: 404, errorCode: 1404, descHas: "unknown-x"},
		{name: "wrong content type", call: simCall{method: "POST", path: sims, body: `{"CLI":"(+44)7700900129"}`, header: map[string]string{"Content-Type": "text/plain"}}, status: 415, code: 415, errorCode: 1415},
		{name: "XML only", call: simCall{method: "GET", path: sims + "/(+44)7700900123", header: map[string]string{"Accept": "application/xml"}}, status: 406, code: 406, errorCode: 1406},
		{name: "no token", call: simCall{method: "GET", path: sims + "/(+44)7700900123"}, token: "-", status: 401, code: 401, errorCode: 4010, descHas: "denied"},
		{name: "forged token", call: simCall{method: "GET", path: sims + "/(+44)7700900123"}, token: "forged", status: 401, code: 401, errorCode: 4010},
		{name: "lookup", call: simCall{method: "GET", path: sims + "/%28%2B44%297700900123"}, status: 200, code: 200},
		{name: "lookup on another account", call: simCall{method: "GET", path: "/v1/accounts/other/hardware/sims/%28%2B44%297700900123"}, status: 404, code: 404, errorCode: 1405},
		{name: "status of nothing", call: simCall{method: "GET", path: sims + "/1/status/2"}, status: 404, code: 404, errorCode: 2404},
		{name: "unknown path", call: simCall{method: "GET", path: "/v2/whatever"}, status: 404, code: 404, errorCode: 1400},
	}
	for _, tc := range cases {
		if tc.name == "duplicate" && forms == simkit.Alternate {
			// The reference page's reading: the 409 in ErrorCode only.
			tc.status, tc.code, tc.errorCode = 400, 400, 409
		}
		t.Run(tc.name, func(t *testing.T) {
			token := tok
			switch tc.token {
			case "-":
				token = ""
			case "":
			default:
				token = tc.token
			}
			before := sim.Kit().ProvisionCount(tc.provisions)
			status, env := tc.call.do(t, srv.URL, token)
			if status != tc.status || env.Code != tc.code || env.ErrorCode != tc.errorCode || env.ErrorSubCode != tc.subCode {
				t.Errorf("HTTP %d Code %d ErrorCode %d/%d; want %d %d %d/%d (%s)", status, env.Code, env.ErrorCode, env.ErrorSubCode,
					tc.status, tc.code, tc.errorCode, tc.subCode, env.ErrorDescription)
			}
			if env.Success == nil || *env.Success != (tc.errorCode == 0) {
				t.Errorf("Success %v", env.Success)
			}
			if !strings.Contains(env.ErrorDescription, tc.descHas) {
				t.Errorf("ErrorDescription %q, want %q", env.ErrorDescription, tc.descHas)
			}
			if tc.provisions != "" && sim.Kit().ProvisionCount(tc.provisions) != before+1 {
				t.Errorf("provisioning of %s not counted", tc.provisions)
			}
		})
	}
}

func TestSimulatorStatusLifecycle(t *testing.T) {
	for _, forms := range []simkit.Forms{simkit.Documented, simkit.Alternate} {
		t.Run(forms.String(), func(t *testing.T) { simulatorStatusLifecycle(t, forms) })
	}
}

func simulatorStatusLifecycle(t *testing.T, forms simkit.Forms) {
	var mu sync.Mutex
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	sim := NewSimulator(SimOptions{AsyncDelay: time.Minute, Now: clock, Forms: forms})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	tok := simToken(t, srv.URL)
	status, env := simCall{method: "POST", path: "/v1/accounts/acme%20ltd/hardware/sims", body: `{"CLI":"(+44)7700900123","SIMNumber":"89441000000000000034"}`}.do(t, srv.URL, tok)
	if status != 202 {
		t.Fatalf("create: %d %s", status, env.raw)
	}
	const sim0 = "/v1/accounts/acme%20ltd/hardware/sims/%28%2B44%297700900123/status"
	switch forms {
	case simkit.Alternate:
		id := (&reply{Meta: env.Meta}).meta("RequestId")
		if id == "" || env.StatusUrl != sim0+"/"+id {
			t.Fatalf("StatusUrl %q with RequestId %q, want %s/{RequestId}", env.StatusUrl, id, sim0)
		}
	default:
		cmdid, ok := strings.CutPrefix(env.StatusUrl, sim0+"?cmdid=")
		if !ok || !strings.HasSuffix(cmdid, "%3D%3D") || strings.ContainsAny(cmdid, "+/=") || env.Meta.text != "" || env.Meta.fields != nil {
			t.Fatalf("StatusUrl %q Meta %+v, want %s?cmdid=<percent-encoded base64> and Meta \"\"", env.StatusUrl, env.Meta, sim0)
		}
	}
	var card SIMCard
	if err := json.Unmarshal(env.Data, &card); err != nil || card.State != StateNotActivated || card.ActorStatus != ActorPending {
		t.Fatalf("created SIM %+v %v", card, err)
	}
	poll := func() RequestStatus {
		t.Helper()
		_, env := simCall{method: "GET", path: env.StatusUrl}.do(t, srv.URL, tok)
		var st RequestStatus
		if err := json.Unmarshal(env.Data, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := poll(); st.Status != StatusPending {
		t.Errorf("before the delay: %+v", st)
	}
	advance(time.Minute)
	st := poll()
	if st.Status != StatusComplete || st.SIMCard == nil || st.SIMCard.State != StateReady || st.SIMCard.ActorStatus != ActorStable || st.SIMCard.Version != 2 {
		t.Errorf("after the delay: %+v %+v", st, st.SIMCard)
	}
	// Token expiry follows the simulator's clock.
	advance(2 * time.Hour)
	if status, _ := (simCall{method: "GET", path: env.StatusUrl}).do(t, srv.URL, tok); status != 401 {
		t.Errorf("expired token: HTTP %d", status)
	}
}

// TestSimulatorForms pins the bytes that tell the two forms apart: the
// captured envelope writes every field (Meta "", StatusUrl null,
// ContinuationToken "") and unset SIMCard fields as null; the reference
// sample's form writes Meta as an object and leaves unset fields out.
func TestSimulatorForms(t *testing.T) {
	cases := map[simkit.Forms]struct{ has, hasNot []string }{
		simkit.Documented: {
			has: []string{`"Meta":""`, `"ErrorDescription":""`, `"ContinuationToken":""`, `"StatusUrl":null`,
				`"Description":null`, `"ForeignAttributes":null`, `"Hints":null`, `"ErrorCode":0`},
		},
		simkit.Alternate: {
			hasNot: []string{`"Meta":""`, `"StatusUrl"`, `"ContinuationToken"`, `"Description"`, `null`},
		},
	}
	for forms, want := range cases {
		sim := NewSimulator(SimOptions{Forms: forms})
		srv := httptest.NewServer(sim)
		tok := simToken(t, srv.URL)
		status, created := simCall{method: "POST", path: "/v1/accounts/acme/hardware/sims", body: `{"CLI":"(+44)7700900123"}`}.do(t, srv.URL, tok)
		_, looked := simCall{method: "GET", path: "/v1/accounts/acme/hardware/sims/%28%2B44%297700900123"}.do(t, srv.URL, tok)
		srv.Close()
		if status != 202 {
			t.Fatalf("%s: create HTTP %d", forms, status)
		}
		if forms == simkit.Alternate && !strings.Contains(string(created.raw), `"Meta":{"RequestId":"`) {
			t.Errorf("%s: 202 %s, want Meta as an object with a RequestId", forms, created.raw)
		}
		for _, s := range want.has {
			if !strings.Contains(string(looked.raw), s) {
				t.Errorf("%s: lookup %s lacks %s", forms, looked.raw, s)
			}
		}
		for _, s := range want.hasNot {
			if strings.Contains(string(looked.raw), s) {
				t.Errorf("%s: lookup %s has %s", forms, looked.raw, s)
			}
		}
	}
}

func TestSimulatorCredentials(t *testing.T) {
	sim := NewSimulator(SimOptions{ClientID: "me", ClientSecret: "pw"})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	for _, tc := range []struct {
		form   url.Values
		status int
	}{
		{url.Values{"grant_type": {"client_credentials"}, "client_id": {"me"}, "client_secret": {"pw"}}, 200},
		{url.Values{"grant_type": {"client_credentials"}, "client_id": {"me"}, "client_secret": {"nope"}}, 400},
		{url.Values{"grant_type": {"password"}, "client_id": {"me"}, "client_secret": {"pw"}}, 400},
		{url.Values{"grant_type": {"client_credentials"}, "client_id": {SimClientID}, "client_secret": {SimClientSecret}}, 400},
	} {
		resp, err := http.PostForm(srv.URL+tokenPath, tc.form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%v: HTTP %d, want %d", tc.form, resp.StatusCode, tc.status)
		}
	}
	if got := sim.Kit().Stats().Requests["token"]; got != 4 {
		t.Errorf("token requests counted %d, want 4", got)
	}
}
