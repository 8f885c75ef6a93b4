package asavie

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestReplyMeta: Meta as the reference page documents it (an object), as
// the live API sends it (""), as null, as other text, and as anything else
// JSON allows: none may make the envelope unreadable.
func TestReplyMeta(t *testing.T) {
	cases := []struct {
		meta, requestID string
	}{
		{`{"RequestId":"r-1"}`, "r-1"},
		{`{"requestid":7}`, "7"},
		{`""`, ""},
		{`"r-2"`, ""},
		{`null`, ""},
		{`42`, ""},
		{`["a"]`, ""},
	}
	for _, tc := range cases {
		body := `{"Data":null,"Success":true,"Code":200,"ErrorCode":0,"ErrorSubCode":0,"ErrorDescription":"","Meta":` + tc.meta + `,"StatusUrl":null,"ContinuationToken":""}`
		var r reply
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Errorf("Meta %s: %v", tc.meta, err)
			continue
		}
		if got := r.meta("RequestId"); got != tc.requestID || r.Success == nil || !*r.Success || r.StatusURL != "" {
			t.Errorf("Meta %s: RequestId %q, Success %v, StatusUrl %q", tc.meta, got, r.Success, r.StatusURL)
		}
	}
}

// TestSIMCardNulls: the captured SIMCard writes unset fields as null.
func TestSIMCardNulls(t *testing.T) {
	const data = `{"CLI":"204046868148000","SIMNumber":"89314404000452386593","Description":null,"InventoryRef":null,"State":3,"Version":null,"ActorStatus":0,"ForeignAttributes":null,"Tariff":null,"Hints":null,"NetworkStatus":null,"InternalSOC":null}`
	var card SIMCard
	if err := json.Unmarshal([]byte(data), &card); err != nil {
		t.Fatal(err)
	}
	if card.CLI != "204046868148000" || card.State != StateLive || card.Description != "" || card.ForeignAttributes != nil {
		t.Errorf("%+v", card)
	}
}

// TestRequestStatusText: Status is read as text whatever JSON scalar it
// arrives as, so an unexpected one can be quoted; an object is unreadable.
func TestRequestStatusText(t *testing.T) {
	for in, want := range map[string]string{`"complete"`: "complete", `2`: "2", `true`: "true", `null`: ""} {
		var st RequestStatus
		if err := json.Unmarshal([]byte(`{"Status":`+in+`}`), &st); err != nil || string(st.Status) != want {
			t.Errorf("Status %s: %q %v, want %q", in, st.Status, err, want)
		}
	}
	var st RequestStatus
	if err := json.Unmarshal([]byte(`{"Status":{"a":1}}`), &st); err == nil {
		t.Errorf("Status as an object read as %q", st.Status)
	}
}

func TestIsStatusURL(t *testing.T) {
	cases := map[string]bool{
		"/v1/accounts/a/hardware/sims/%28%2B44%297700900123/status/3f":                true,
		"/v1/accounts/cardilink/hardware/sims/204046868148000/status?cmdid=Z2Ev%2FLE": true,
		"/v1/accounts/a/hardware/sims/1/status":                                       true,
		"/v1/accounts/a/hardware/sims/1/status/":                                      true,
		"https://api.example.com/v1/accounts/a/hardware/sims/1/status?cmdid=x":        true,
		"/v1/accounts/a/hardware/sims/%28%2B44%297700900123":                          false,
		"/v1/accounts/status/hardware/sims/1":                                         false,
		"/v1/accounts/a/hardware/sims/1?next=/status":                                 false,
		"/v1/accounts/a/hardware/sims/statusreport":                                   false,
	}
	for handle, want := range cases {
		if got := isStatusURL(handle); got != want {
			t.Errorf("%s: %v, want %v", handle, got, want)
		}
	}
}

// TestExcerpt: an unreadable answer is quoted, but only its start, cut
// on a character boundary.
func TestExcerpt(t *testing.T) {
	if got := excerpt([]byte("  ")); got != "nothing (an empty body)" {
		t.Errorf("empty: %s", got)
	}
	if got := excerpt([]byte(`{"Status":"deferred"}`)); got != `"{\"Status\":\"deferred\"}"` {
		t.Errorf("short: %s", got)
	}
	long := strings.Repeat("é", 300) // 600 bytes
	got := excerpt([]byte(long))
	if !strings.HasSuffix(got, " (first 200 of 600 bytes)") || !utf8.ValidString(got) || len(got) > maxExcerpt+40 {
		t.Errorf("long: %s", got)
	}
}
