package asavie

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
)

func TestReadAnswer(t *testing.T) {
	date := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		applied    bool
		// want
		ok           bool
		effective    int
		code         string
		retryable    bool
		maybeApplied bool
		after        time.Duration // exact unless afterApprox
		afterApprox  bool
		msgHas       string
	}{
		{name: "accepted", status: 202, body: `{"Success":true,"Code":202,"StatusUrl":"/v1/x/status/1"}`, ok: true, effective: 202},
		{name: "ok without Code", status: 200, body: `{"Success":true,"Data":{"CLI":"1"}}`, ok: true, effective: 200},
		{name: "conflict under HTTP 200", status: 200, body: `{"Success":false,"Code":409,"ErrorCode":3009,"ErrorDescription":"exists"}`,
			effective: 409, code: "3009", msgHas: "[HTTP 200, envelope Code 409]"},
		{name: "conflict as HTTP 409", status: 409, body: `{"Success":false,"Code":409,"ErrorCode":3009,"ErrorDescription":"exists"}`,
			effective: 409, code: "3009", msgHas: "exists"},
		{name: "server error under HTTP 200", status: 200, body: `{"Success":false,"Code":500,"ErrorCode":5000,"ErrorDescription":"backend"}`, applied: true,
			effective: 500, code: "5000", retryable: true, maybeApplied: true},
		{name: "server error under HTTP 200 on a read", status: 200, body: `{"Success":false,"Code":500}`,
			effective: 500, code: providers.CodeServer, retryable: true},
		{name: "Code as a string", status: 200, body: `{"Success":false,"Code":"503","ErrorCode":"7"}`, applied: true,
			effective: 503, code: "7", retryable: true, maybeApplied: true},
		{name: "Success false without Code", status: 200, body: `{"Success":false,"ErrorDescription":"no"}`,
			effective: 200, code: providers.CodeRejected, msgHas: "no"},
		{name: "Success true with failing Code", status: 200, body: `{"Success":true,"Code":400,"ErrorCode":1001}`,
			effective: 400, code: "1001"},
		{name: "Success true with ErrorCode", status: 200, body: `{"Success":true,"Code":200,"ErrorCode":12}`,
			effective: 200, code: "12"},
		{name: "validation", status: 400, body: `{"Success":false,"Code":400,"ErrorCode":1001,"ErrorSubCode":1,"ErrorDescription":"The field CLI must match"}`,
			effective: 400, code: "1001", msgHas: "The field CLI must match (sub-code 1)"},
		// readAnswer sees a 401 only after send has re-authenticated once.
		{name: "unauthorized", status: 401, body: `{"Success":false,"Code":401,"ErrorCode":4010,"ErrorDescription":"denied"}`, applied: true,
			effective: 401, code: providers.CodeCredentials, msgHas: "denied"},
		{name: "unauthorized in envelope", status: 200, body: `{"Success":false,"Code":401}`, applied: true,
			effective: 401, code: providers.CodeCredentials},
		{name: "forbidden", status: 403, body: `{"Success":false,"Code":403,"ErrorDescription":"not your account"}`, applied: true,
			effective: 403, code: providers.CodeAuth, msgHas: "not your account"},
		{name: "forbidden in envelope", status: 200, body: `{"Success":false,"Code":403}`,
			effective: 403, code: providers.CodeAuth},
		{name: "not found", status: 404, body: `{"Success":false,"Code":404,"ErrorCode":1405}`, effective: 404, code: "1405"},
		{name: "429 seconds", status: 429, body: `{"message":"Too Many Requests"}`, retryAfter: "7", applied: true,
			effective: 429, code: providers.CodeRateLimited, retryable: true, after: 7 * time.Second},
		{name: "429 seconds capped", status: 429, body: `{}`, retryAfter: "600",
			effective: 429, code: providers.CodeRateLimited, retryable: true, after: time.Minute},
		{name: "429 HTTP date", status: 429, body: ``, retryAfter: date,
			effective: 429, code: providers.CodeRateLimited, retryable: true, after: 30 * time.Second, afterApprox: true},
		{name: "429 in envelope", status: 200, body: `{"Success":false,"Code":429}`, retryAfter: "3",
			effective: 429, code: providers.CodeRateLimited, retryable: true, after: 3 * time.Second},
		{name: "501", status: 501, body: `{"Success":false,"Code":501}`, applied: true,
			effective: 501, code: providers.CodeServer, maybeApplied: true},
		{name: "proxy 502 HTML", status: 502, body: `<html>Bad Gateway</html>`, applied: true,
			effective: 502, code: providers.CodeServer, retryable: true, maybeApplied: true},
		{name: "503 with a success envelope", status: 503, body: `{"Success":true,"Code":202}`, applied: true,
			effective: 503, code: providers.CodeServer, retryable: true, maybeApplied: true},
		{name: "garbled 202", status: 202, body: `{"Success":true,"Code":20` + "\x00{<garbled", applied: true,
			effective: 202, code: providers.CodeMalformed, retryable: true, maybeApplied: true},
		{name: "garbled 200 on a read", status: 200, body: `{"Succ`, effective: 200, code: providers.CodeMalformed, retryable: true},
		{name: "JSON without Success", status: 200, body: `{"message":"ok"}`, applied: true,
			effective: 200, code: providers.CodeMalformed, retryable: true, maybeApplied: true},
		{name: "empty 400", status: 400, body: ``, effective: 400, code: providers.CodeRejected},
		{name: "Data of the wrong type", status: 200, body: `{"Success":true,"Meta":{"a":1},"Data":[1,2]}`, ok: true, effective: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.retryAfter != "" {
				h.Set("Retry-After", tc.retryAfter)
			}
			resp := &providers.Response{Status: tc.status, Header: h, Body: []byte(tc.body)}
			a, e := readAnswer(resp, "answer", tc.applied, time.Minute)
			if a.status != tc.effective {
				t.Errorf("effective status %d, want %d", a.status, tc.effective)
			}
			if tc.ok {
				if e != nil {
					t.Fatalf("error %v, want success", e)
				}
				return
			}
			if e == nil {
				t.Fatal("success, want an error")
			}
			if e.Code != tc.code || e.Retryable != tc.retryable || e.MaybeApplied != tc.maybeApplied {
				t.Errorf("got code=%s retryable=%v maybeApplied=%v; want %s %v %v", e.Code, e.Retryable, e.MaybeApplied, tc.code, tc.retryable, tc.maybeApplied)
			}
			if tc.afterApprox {
				if e.RetryAfter < tc.after-2*time.Second || e.RetryAfter > tc.after {
					t.Errorf("RetryAfter %v, want about %v", e.RetryAfter, tc.after)
				}
			} else if e.RetryAfter != tc.after {
				t.Errorf("RetryAfter %v, want %v", e.RetryAfter, tc.after)
			}
			if e.Message == "" || !strings.Contains(e.Message, tc.msgHas) {
				t.Errorf("message %q, want it to contain %q", e.Message, tc.msgHas)
			}
		})
	}
}

func TestEnumParsing(t *testing.T) {
	cases := []struct {
		in   string
		want SIMState
		err  bool
	}{
		{`3`, StateLive, false},
		{`"live"`, StateLive, false},
		{`"Suspend"`, StateSuspend, false},
		{`"100"`, StateTerminated, false},
		{`100`, StateTerminated, false},
		{`null`, StateNotActivated, false},
		{`"dormant"`, 0, true},
		{`true`, 0, true},
		{`3.5`, 0, true},
	}
	for _, tc := range cases {
		var s SIMState
		err := json.Unmarshal([]byte(tc.in), &s)
		if (err != nil) != tc.err || (!tc.err && s != tc.want) {
			t.Errorf("%s: got %v (%v), want %v err=%v", tc.in, s, err, tc.want, tc.err)
		}
	}
	var card SIMCard
	xmlStyle := `{"CLI":"(+44)7700900123","State":"live","ActorStatus":"pending","NetworkStatus":"connected","Version":5}`
	if err := json.Unmarshal([]byte(xmlStyle), &card); err != nil {
		t.Fatal(err)
	}
	if card.State != StateLive || card.ActorStatus != ActorPending || card.NetworkStatus != 1 {
		t.Errorf("named enums: %+v", card)
	}
	b, _ := json.Marshal(card)
	if !strings.Contains(string(b), `"State":3`) || !strings.Contains(string(b), `"ActorStatus":1`) {
		t.Errorf("marshalled %s, want numeric enums", b)
	}
	if StateTerminated.String() != "terminated" || SIMState(7).String() != "state(7)" {
		t.Errorf("names: %s %s", StateTerminated, SIMState(7))
	}
}

func TestSubscriptionOf(t *testing.T) {
	cases := []struct {
		state          SIMState
		actor          ActorStatus
		active, pendng bool
	}{
		{StateReady, ActorStable, true, false},
		{StateLive, ActorStable, true, false},
		{StateNotActivated, ActorStable, true, false},
		{StateNotActivated, ActorPending, false, true},
		{StateSuspend, ActorStable, false, false},
		{StateBar, ActorStable, false, false},
		{StateTerminated, ActorStable, false, false},
		{StateUnknown, ActorStable, false, false},
		{StateReady, ActorStalled, false, false},
	}
	for _, tc := range cases {
		sub := subscriptionOf(SIMCard{CLI: "1", State: tc.state, ActorStatus: tc.actor})
		if !sub.Found || sub.Active != tc.active || sub.Pending != tc.pendng || sub.State != tc.state.String() {
			t.Errorf("%s/%s: %+v", tc.state, tc.actor, sub)
		}
	}
}

func TestDifference(t *testing.T) {
	const iccid = "89441000000000000034" // Luhn-valid
	cases := []struct {
		row, have string
		want      string
	}{
		{"", "8944", ""},
		{iccid, iccid, ""},
		{iccid[:19], iccid, ""}, // the row omits the check digit
		{iccid, iccid[:19], ""},
		{iccid, "", "exists without a SIM number; row has " + iccid},
		{iccid, "89441000000000000045", "exists with SIM number 89441000000000000045; row has " + iccid},
		{"8944100000000000003", "89441000000000000038", "exists with SIM number"}, // extra digit is not a check digit
	}
	for _, tc := range cases {
		got := difference(providers.Order{ICCID: tc.row}, SIMCard{CLI: "(+44)7700900123", SIMNumber: tc.have})
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("row %q have %q: %q, want %q", tc.row, tc.have, got, tc.want)
		}
	}
}
