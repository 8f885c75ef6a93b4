package thingspace

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/providertest"
)

// Identifiers the fixtures use in place of their sources' placeholders.
const (
	fixtureICCID     = "89148000000000123456"
	fixtureIMEI      = "356938035643809"
	fixtureRequestID = "d1f08526-5443-4054-9a29-4456490ea9f8"
)

// fixtureServer is a ThingSpace that answers the fixture's call with its
// body and status, and everything else (token, login, registration, other
// calls) as a service that works.
type fixtureServer struct {
	f      providertest.Fixture
	lookup []byte // the fixture's "lookup" section, if any

	mu      sync.Mutex
	calls   map[string]int
	missing []string // M2M calls sent without Content-Type: application/json
}

func (s *fixtureServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	s.mu.Lock()
	s.calls[p]++
	if p != pathToken {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			s.missing = append(s.missing, r.Method+" "+p)
		}
	}
	s.mu.Unlock()
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	serve := func(status int, body []byte) {
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
	fixture := func() { serve(s.f.HTTP, s.f.Body) }
	switch {
	case p == pathToken:
		serve(200, []byte(`{"access_token":"tok","expires_in":3600}`))
	case p == pathLogin && s.f.Call == "login":
		fixture()
	case p == pathLogin:
		serve(200, []byte(`{"sessionToken":"sess"}`))
	case p == pathActivate && s.f.Call == "submit":
		fixture()
	case p == pathActivate:
		serve(200, []byte(`{"requestId":"`+fixtureRequestID+`"}`))
	case strings.HasSuffix(p, "/status") && s.f.Call == "check":
		fixture()
	case p == pathList && s.f.Call == "lookup":
		fixture()
	case p == pathList && s.lookup != nil:
		serve(200, s.lookup)
	case p == pathList:
		serve(200, []byte(`{"hasMoreData":false,"devices":[]}`))
	default:
		serve(200, []byte(`{}`))
	}
}

func (s *fixtureServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// section returns a named file of the fixture's archive, nil if absent:
// the shared reader keeps only body and want.
func section(t *testing.T, name, file string) []byte {
	t.Helper()
	a, err := txtar.ParseFile(filepath.Join("testdata", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range a.Files {
		if f.Name == file {
			return f.Data
		}
	}
	return nil
}

func fixtureOrder() providers.Order {
	return providers.Order{Key: "row-1", EID: testEID, ICCID: fixtureICCID, IMEI: fixtureIMEI,
		Fields: map[string]string{"account_name": testAccount}}
}

// TestFixtures runs the real client call each golden fixture names against
// a server answering with the fixture's body, and compares what the client
// read with the fixture's want section.
func TestFixtures(t *testing.T) {
	for _, f := range providertest.Fixtures(t, "testdata") {
		t.Run(f.Name, func(t *testing.T) {
			srv := &fixtureServer{f: f, lookup: section(t, f.Name, "lookup"), calls: map[string]int{}}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			cfg := testConfig(ts.URL)
			var got map[string]string
			switch f.Call {
			case "check":
				got = outcomeFields(newTestClient(t, cfg).Check(context.Background(), fixtureOrder(), fixtureRequestID))
				if e := got["message"]; f.Want["quotes_body"] == "true" {
					got["quotes_body"] = strconv.FormatBool(strings.Contains(e, `\"status\":\"Success\"`))
				}
			case "submit":
				got = outcomeFields(newTestClient(t, cfg).Submit(context.Background(), []providers.Order{fixtureOrder()})[0])
			case "lookup":
				sub, err := newTestClient(t, cfg).Lookup(context.Background(), fixtureOrder())
				got = subscriptionFields(sub, err)
			case "login":
				c := newTestClient(t, cfg)
				_, err := c.Lookup(context.Background(), fixtureOrder())
				got = errorFields(providers.AsError(err))
				got["status"] = "accepted"
				if err != nil {
					got["status"] = string(providers.Failed)
				}
				got["logins"] = strconv.Itoa(srv.count(pathLogin))
				ctx := context.Background()
				c.Submit(ctx, []providers.Order{fixtureOrder()})
				c.Check(ctx, fixtureOrder(), fixtureRequestID)
				_, _ = c.Lookup(ctx, fixtureOrder())
				got["logins_after_more_calls"] = strconv.Itoa(srv.count(pathLogin))
			case "callback":
				got = runCallbackFixture(t, cfg, f)
			default:
				t.Fatalf("unknown Call %q", f.Call)
			}
			got["lookups"] = strconv.Itoa(srv.count(pathList))
			got["activates"] = strconv.Itoa(srv.count(pathActivate))
			providertest.Compare(t, f, got)
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.missing) > 0 {
				t.Errorf("calls without Content-Type: application/json: %v", srv.missing)
			}
		})
	}
}

// runCallbackFixture delivers the body to a running listener, as
// ThingSpace would, and checks the row; a warning is followed by the
// documented SUCCESS delivery, which must be taken.
func runCallbackFixture(t *testing.T, cfg Config, f providertest.Fixture) map[string]string {
	t.Helper()
	cfg.Callback = &CallbackConfig{Listen: "127.0.0.1:0", Username: "username", Password: "password"}
	c := newTestClient(t, cfg)
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	deliver := func(body []byte) int {
		resp, err := http.Post(c.callbackURL(testAccount), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("deliver: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	code := deliver(f.Body)
	got := outcomeFields(c.Check(context.Background(), fixtureOrder(), fixtureRequestID))
	got["http"] = strconv.Itoa(code)
	if _, ok := f.Want["then_success"]; ok {
		deliver(fixtureBody(t, "callback-documented"))
		got["then_success"] = string(c.Check(context.Background(), fixtureOrder(), fixtureRequestID).Status)
	}
	return got
}

func fixtureBody(t *testing.T, name string) []byte {
	t.Helper()
	return section(t, name, "body")
}

func outcomeFields(out providers.Outcome) map[string]string {
	got := map[string]string{"status": string(out.Status), "handle": out.Handle}
	for k, v := range out.Result {
		got[k] = v
	}
	for k, v := range errorFields(out.Err) {
		got[k] = v
	}
	return got
}

func errorFields(e *providers.Error) map[string]string {
	if e == nil {
		return map[string]string{}
	}
	got := map[string]string{
		"code": e.Code, "message": e.Message,
		"retryable": strconv.FormatBool(e.Retryable), "maybe_applied": strconv.FormatBool(e.MaybeApplied),
	}
	return got
}

func subscriptionFields(sub providers.Subscription, err error) map[string]string {
	got := map[string]string{
		"found": strconv.FormatBool(sub.Found), "active": strconv.FormatBool(sub.Active),
		"pending": strconv.FormatBool(sub.Pending), "state": sub.State,
	}
	for k, v := range sub.Identifiers {
		got[k] = v
	}
	if err != nil {
		for k, v := range errorFields(providers.AsError(err)) {
			got[k] = v
		}
	}
	return got
}
