package thingspace

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/simkit"
)

// TestRefusedLoginsAtMostTwo: a wrong password must not lock the account
// (ThingSpace locks a contact after 5 failed logins in a row). However many
// calls a run makes, concurrently or not, the service sees at most 2
// logins, and every call fails at once as credentials_refused.
func TestRefusedLoginsAtMostTwo(t *testing.T) {
	sim := NewSimulator(SimOptions{})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Password = "wrong-password"
	c := newTestClient(t, cfg)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := testOrder(testEID)
			for range 5 {
				out := c.Submit(ctx, []providers.Order{o})[0]
				if e := out.Err; out.Status != providers.Failed || e.Code != providers.CodeCredentials || e.Retryable || e.MaybeApplied {
					t.Errorf("worker %d submit: %s %+v", i, out.Status, e)
				}
				if out := c.Check(ctx, o, "r1"); out.Status == providers.Succeeded || out.Err == nil || out.Err.Code != providers.CodeCredentials {
					t.Errorf("worker %d check: %s %+v", i, out.Status, out.Err)
				}
				if _, err := c.Lookup(ctx, o); providers.CredentialsRefused(err) == nil {
					t.Errorf("worker %d lookup: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	st := sim.Kit().Stats()
	if n := st.Requests[simkit.OpLogin]; n < 1 || n > 2 {
		t.Errorf("%d login attempts, want 1 or 2", n)
	}
	if n := st.Requests[simkit.OpProvision] + st.Requests[simkit.OpLookup] + st.Requests[simkit.OpStatus]; n != 0 {
		t.Errorf("%d M2M calls sent without a session", n)
	}
}

// TestRetryableLoginFailuresAreNotRefusals: 429 and 5xx at login are "try
// later", not failed logins: retryable, and the next call logs in again.
func TestRetryableLoginFailuresAreNotRefusals(t *testing.T) {
	sim := NewSimulator(SimOptions{})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c := newTestClient(t, testConfig(srv.URL))
	sim.Kit().Inject(simkit.OpLogin, simkit.Unavailable, 1)
	_, err := c.Lookup(context.Background(), testOrder(testEID))
	if e := providers.AsError(err); err == nil || !e.Retryable || e.Code == providers.CodeCredentials {
		t.Fatalf("503 at login: %+v, want retryable", e)
	}
	if _, err := c.Lookup(context.Background(), testOrder(testEID)); err != nil {
		t.Errorf("after a 503 at login the next call should log in: %v", err)
	}
}

// TestSessionExpiredAtAnyStatus: ThingSpace documents no status for an
// expired session, only that the error says so: the client logs in once
// more and resends, once.
func TestSessionExpiredAtAnyStatus(t *testing.T) {
	var mu sync.Mutex
	expired := 1
	s, base := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if expired > 0 {
			expired--
			answer(400, nil, `{"errorCode":"REQUEST_FAILED.SessionToken.Expired","errorMessage":"Session token expired"}`)(w, r)
			return
		}
		answer(200, nil, `{"hasMoreData":false,"devices":[]}`)(w, r)
	})
	c := newTestClient(t, testConfig(base))
	if _, err := c.Lookup(context.Background(), testOrder(testEID)); err != nil {
		t.Fatalf("lookup after an expired session: %v", err)
	}
	if n := s.sim.Kit().Stats().Requests[simkit.OpLogin]; n != 2 {
		t.Errorf("%d logins, want 2 (one renewal)", n)
	}
	// Always expired: one renewal, then the error is returned.
	mu.Lock()
	expired = 1000
	mu.Unlock()
	_, err := c.Lookup(context.Background(), testOrder(testEID))
	if e := providers.AsError(err); err == nil || e.Code != "REQUEST_FAILED.SessionToken.Expired" {
		t.Errorf("err %v, want the service's code", err)
	}
	if n := len(s.calls(pathList)); n != 4 {
		t.Errorf("%d list calls, want 4: no loop", n)
	}
}

// TestCallbackPorts: ThingSpace delivers callbacks only to a few ports.
func TestCallbackPorts(t *testing.T) {
	for _, tc := range []struct {
		listen, public string
		ok             bool
	}{
		{listen: "0.0.0.0:9001", ok: true},
		{listen: "0.0.0.0:28220", ok: true},
		{listen: ":8080"},
		{listen: "10.0.0.7:8080"},
		{listen: "10.0.0.7:9003", ok: true},
		// ThingSpace cannot reach loopback: only a local simulator can.
		{listen: "127.0.0.1:0", ok: true},
		{listen: ":8080", public: "http://localhost:8080/cb", ok: true},
		{listen: ":8080", public: "http://[::1]:8080/cb", ok: true},
		{listen: ":8080", public: "https://cb.example.com/thingspace", ok: true},
		{listen: ":8080", public: "http://cb.example.com/x", ok: true},
		{listen: ":9001", public: "https://cb.example.com:8443/x"},
		{listen: ":9001", public: "https://cb.example.com:50555/x", ok: true},
	} {
		cfg := testConfig("https://thingspace.example")
		cfg.Callback = &CallbackConfig{Listen: tc.listen, PublicURL: tc.public, Username: "u", Password: "p"}
		_, err := New(cfg)
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc, err)
		}
		if err != nil && !strings.Contains(err.Error(), "9001-9006, 50551-50559, 28200-28220") {
			t.Errorf("error does not list the allowed ports: %v", err)
		}
	}
}

// TestWarningThenFinal: a warning callback keeps the row pending and does
// not make the later final delivery a repeat.
func TestWarningThenFinal(t *testing.T) {
	c := callbackClient(t, time.Now)
	post(c, cbBody("rw", "WARNING", "", ""))
	post(c, cbBody("rw", "Warning", "", ""))
	if out := c.Check(context.Background(), testOrder(testEID), "rw"); out.Status != providers.Accepted {
		t.Fatalf("after warnings: %+v", out)
	}
	post(c, cbBody("rw", "SUCCESS", "EXECUTED_SUCCESS", ""))
	if out := c.Check(context.Background(), testOrder(testEID), "rw"); out.Status != providers.Succeeded {
		t.Errorf("final after a warning ignored: %+v", out)
	}
	if st := c.CallbackStats(); st.Received != 3 || st.Duplicates != 1 {
		t.Errorf("stats %+v, want 3 received, 1 duplicate (the second warning)", st)
	}
}

// TestSimulatorFormsEndToEnd runs both forms with the status call listing
// no device (bulk not supported): rows complete through the device list.
func TestSimulatorFormsEndToEnd(t *testing.T) {
	for _, forms := range []simkit.Forms{simkit.Documented, simkit.Alternate} {
		t.Run(forms.String(), func(t *testing.T) {
			sim := NewSimulator(SimOptions{Forms: forms, BulkStatusUnlisted: true, AsyncDelay: 20 * time.Millisecond})
			defer sim.Close()
			srv := httptest.NewServer(sim)
			defer srv.Close()
			c := newTestClient(t, testConfig(srv.URL))
			os := []providers.Order{testOrder(testEID), testOrder("89049032123451234512345678901236")}
			outs := c.Submit(context.Background(), os)
			deadline := time.Now().Add(5 * time.Second)
			for i, out := range outs {
				for out.Status == providers.Accepted && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
					out = c.Check(context.Background(), os[i], outs[i].Handle)
				}
				if out.Status != providers.Succeeded {
					t.Errorf("order %d: %s %v", i, out.Status, out.Err)
				}
			}
			if sim.Kit().Stats().Requests[simkit.OpLookup] == 0 {
				t.Errorf("no device list calls: the unlisted rows cannot have been decided")
			}
		})
	}
}
