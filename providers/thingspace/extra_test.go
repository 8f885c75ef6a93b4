package thingspace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/providertest"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/thingspace"
)

var callbackMode = mode{callback: true}

func orders(from, n int) []providers.Order {
	os := make([]providers.Order, n)
	for i := range os {
		os[i] = order(from + i)
	}
	return os
}

func allSucceeded(t *testing.T, outs []providers.Outcome) {
	t.Helper()
	for i, out := range outs {
		if out.Status != providers.Succeeded {
			t.Errorf("order %d: %s %v, want succeeded", i, out.Status, out.Err)
		}
	}
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func requests(e *env, op string) int  { return e.sim.Kit().Stats().Requests[op] }
func counter(e *env, name string) int { return e.sim.Kit().Stats().Counters[name] }

// extra holds the ThingSpace cases: batching, callbacks and their faults,
// sessions, failures, lookup and drift.
func extra(t *testing.T, h providertest.Harness) {
	t.Run("BatchOf100IsOneRequest", func(t *testing.T) {
		e := start(t, providertest.Setup{}, thingspace.SimOptions{}, callbackMode)
		allSucceeded(t, providertest.Complete(t, e.pair, orders(0, 100), 20*time.Second))
		if n := requests(e, simkit.OpProvision); n != 1 {
			t.Errorf("100 orders took %d activate requests, want 1", n)
		}
	})
	t.Run("Batch101IsSplit", func(t *testing.T) {
		e := start(t, providertest.Setup{}, thingspace.SimOptions{}, callbackMode)
		os := orders(200, 101)
		allSucceeded(t, providertest.Complete(t, e.pair, os, 20*time.Second))
		if n := requests(e, simkit.OpProvision); n != 2 {
			t.Errorf("101 orders took %d activate requests, want 2", n)
		}
		for _, o := range os {
			if n := e.sim.Kit().ProvisionCount(o.EID); n != 1 {
				t.Fatalf("%s provisioned %d times", o.EID, n)
			}
		}
	})
	t.Run("MixedRequestFieldsAreSplit", func(t *testing.T) {
		e := start(t, providertest.Setup{}, thingspace.SimOptions{}, callbackMode)
		os := orders(400, 4)
		os[1].Fields["account_name"] = "0000999999-00002"
		os[3].Fields["account_name"] = "0000999999-00002"
		os[2].Fields["service_plan"] = "Other-Plan"
		allSucceeded(t, providertest.Complete(t, e.pair, os, 10*time.Second))
		if n := requests(e, simkit.OpProvision); n != 3 {
			t.Errorf("3 distinct request-field groups took %d activate requests, want 3", n)
		}
		if e.sim.CallbackURL("0000999999-00002") == "" {
			t.Errorf("second account's callback was not registered")
		}
		if n := requests(e, simkit.OpStatus); n != 0 {
			t.Errorf("%d status polls: the second account should complete by callback", n)
		}
	})
	t.Run("DuplicateCallbacksIgnored", func(t *testing.T) {
		e := start(t, providertest.Setup{}, thingspace.SimOptions{CallbackDuplicate: 1}, callbackMode)
		os := orders(500, 10)
		outs := e.client.Submit(context.Background(), os)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i, out := range outs {
			if final := providertest.Await(t, ctx, e.pair, os[i], out); final.Status != providers.Succeeded {
				t.Errorf("order %d: %s %v", i, final.Status, final.Err)
			}
		}
		eventually(t, "20 deliveries", func() bool { return counter(e, "callbacks_sent") == 20 })
		st := e.client.CallbackStats()
		if st.Received != 20 || st.Duplicates != 10 {
			t.Errorf("callback stats %+v, want 20 received, 10 duplicates", st)
		}
		// Checking again gives the same answer, not an error.
		for i, o := range os {
			out := e.client.Check(context.Background(), o, outs[i].Handle)
			if out.Status != providers.Succeeded {
				t.Errorf("re-check after duplicates: %s %v", out.Status, out.Err)
			}
		}
		if n := requests(e, simkit.OpStatus); n != 0 {
			t.Errorf("%d status polls, want 0", n)
		}
	})
	t.Run("LateOutOfOrderCallbacks", func(t *testing.T) {
		e := start(t, providertest.Setup{}, thingspace.SimOptions{CallbackDelay: 300 * time.Millisecond, CallbackJitter: 200 * time.Millisecond}, callbackMode)
		os := orders(600, 8)
		outs := e.client.Submit(context.Background(), os)
		for i, out := range outs {
			if out.Status != providers.Accepted {
				t.Fatalf("order %d: %s", i, out.Status)
			}
			if c := e.client.Check(context.Background(), os[i], out.Handle); c.Status != providers.Accepted {
				t.Errorf("first check before the late callback: %s", c.Status)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i, out := range outs {
			if final := providertest.Await(t, ctx, e.pair, os[i], out); final.Status != providers.Succeeded {
				t.Errorf("order %d: %s %v", i, final.Status, final.Err)
			}
		}
		if n := requests(e, simkit.OpStatus); n != 0 {
			t.Errorf("%d status polls: late callbacks within grace need none", n)
		}
	})
	t.Run("DeliveryWithBadCredentials", func(t *testing.T) {
		e := start(t, providertest.Setup{AsyncDelay: time.Hour}, thingspace.SimOptions{}, callbackMode)
		o := order(700)
		out := e.client.Submit(context.Background(), []providers.Order{o})[0]
		if out.Status != providers.Accepted {
			t.Fatalf("submit: %s %v", out.Status, out.Err)
		}
		if code := deliver(t, e, delivery(cbUser, "wrong-password", out.Handle, o.EID)); code != http.StatusUnauthorized {
			t.Errorf("bad password: HTTP %d, want 401", code)
		}
		if code := deliver(t, e, delivery("someone", cbPassword, out.Handle, o.EID)); code != http.StatusUnauthorized {
			t.Errorf("bad username: HTTP %d, want 401", code)
		}
		if c := e.client.Check(context.Background(), o, out.Handle); c.Status != providers.Accepted {
			t.Errorf("after refused deliveries: %s, want still accepted", c.Status)
		}
		if st := e.client.CallbackStats(); st.Unauthorized != 2 || st.Received != 0 {
			t.Errorf("stats %+v, want 2 unauthorized, 0 received", st)
		}
		// The same delivery with the right credentials is taken.
		if code := deliver(t, e, delivery(cbUser, cbPassword, out.Handle, o.EID)); code != http.StatusOK {
			t.Fatalf("good delivery: HTTP %d", code)
		}
		if c := e.client.Check(context.Background(), o, out.Handle); c.Status != providers.Succeeded {
			t.Errorf("after a good delivery: %s %v", c.Status, c.Err)
		}
	})
	t.Run("OversizedAndMalformedDeliveries", func(t *testing.T) {
		e := start(t, providertest.Setup{}, thingspace.SimOptions{}, callbackMode)
		big := append([]byte(`{"username":"`+cbUser+`","password":"`+cbPassword+`","requestId":"x","pad":"`), bytes.Repeat([]byte("a"), 2<<20)...)
		big = append(big, `"}`...)
		for _, tc := range []struct {
			name string
			body []byte
			want int
		}{
			{"oversized", big, http.StatusRequestEntityTooLarge},
			{"not json", []byte(`{"username":`), http.StatusBadRequest},
			{"no requestId", delivery(cbUser, cbPassword, "", eid(1)), http.StatusBadRequest},
			{"no device", []byte(`{"username":"` + cbUser + `","password":"` + cbPassword + `","requestId":"r1","status":"SUCCESS"}`), http.StatusBadRequest},
		} {
			if code := deliver(t, e, tc.body); code != tc.want {
				t.Errorf("%s: HTTP %d, want %d", tc.name, code, tc.want)
			}
		}
		resp, err := http.Get(e.sim.CallbackURL(testAccount))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: HTTP %d, want 405", resp.StatusCode)
		}
		if st := e.client.CallbackStats(); st.Received != 0 || st.Held != 0 || st.TooLarge != 1 || st.Malformed != 3 {
			t.Errorf("stats %+v, want nothing received, 1 too large, 3 malformed", st)
		}
		want := map[string]int64{thingspace.RejectTooLarge: 1, thingspace.RejectMalformed: 3, thingspace.RejectBadMethod: 1,
			thingspace.RejectBadPath: 0, thingspace.RejectTooMany: 0, thingspace.RejectBadCredentials: 0}
		if got := e.client.CallbackRejections(); !reflect.DeepEqual(got, want) {
			t.Errorf("rejections %v, want %v", got, want)
		}
	})
	t.Run("LostCallbacksFallBackToPolling", func(t *testing.T) {
		e := start(t, providertest.Setup{}, thingspace.SimOptions{CallbackLoss: 1}, mode{callback: true, grace: 200 * time.Millisecond})
		allSucceeded(t, providertest.Complete(t, e.pair, orders(800, 5), 10*time.Second))
		if n := counter(e, "callbacks_lost"); n != 5 {
			t.Errorf("callbacks_lost %d, want 5", n)
		}
		if n := requests(e, simkit.OpStatus); n == 0 {
			t.Errorf("no status polls: the rows cannot have completed by callback")
		}
	})
	t.Run("PollModeWithoutCallback", func(t *testing.T) {
		e := start(t, providertest.Setup{AsyncDelay: 50 * time.Millisecond}, thingspace.SimOptions{}, mode{})
		allSucceeded(t, providertest.Complete(t, e.pair, orders(900, 3), 10*time.Second))
		if requests(e, simkit.OpStatus) == 0 || requests(e, simkit.OpCallback) != 0 {
			t.Errorf("poll mode: %v", e.sim.Kit().Stats().Requests)
		}
		if e.client.CallbackAddr() != nil {
			t.Errorf("poll mode runs a listener")
		}
	})
	t.Run("SessionExpiryRelogin", func(t *testing.T) {
		e := start(t, providertest.Setup{}, thingspace.SimOptions{SessionIdle: 100 * time.Millisecond}, mode{})
		allSucceeded(t, providertest.Complete(t, e.pair, orders(1100, 1), 5*time.Second))
		time.Sleep(250 * time.Millisecond) // the session idles out at the service
		allSucceeded(t, providertest.Complete(t, e.pair, orders(1101, 1), 5*time.Second))
		if n := requests(e, simkit.OpLogin); n < 2 {
			t.Errorf("%d logins, want a second one after the session expired", n)
		}
		if n := requests(e, simkit.OpToken); n != 1 {
			t.Errorf("%d token requests, want 1: the bearer was still good", n)
		}
		if n := e.sim.Kit().ProvisionCount(eid(1101)); n != 1 {
			t.Errorf("order after expiry provisioned %d times", n)
		}
	})
	for _, m := range []struct {
		name string
		mode mode
	}{{"Callback", callbackMode}, {"Poll", mode{}}} {
		t.Run("FailedActivation"+m.name, func(t *testing.T) {
			e := start(t, providertest.Setup{}, thingspace.SimOptions{}, m.mode)
			os := orders(1200, 2)
			e.sim.FailActivation(os[1].EID)
			outs := providertest.Complete(t, e.pair, os, 10*time.Second)
			if outs[0].Status != providers.Succeeded {
				t.Errorf("good device: %s %v", outs[0].Status, outs[0].Err)
			}
			if outs[1].Status != providers.Failed || outs[1].Err == nil {
				t.Fatalf("failing device: %s", outs[1].Status)
			}
			// A callback carries the euiccStatusCode; the status call's
			// sub-requests carry no code at all.
			want := "1.2.500"
			if !m.mode.callback {
				want = "activation_failed"
			}
			if e := outs[1].Err; e.Code != want || e.Retryable || !strings.Contains(e.Message, "failed") {
				t.Errorf("failure %+v, want the provider's code, not retryable", e)
			}
		})
	}
	t.Run("ResultFields", func(t *testing.T) {
		e := start(t, providertest.Setup{}, thingspace.SimOptions{}, callbackMode)
		out := providertest.Complete(t, e.pair, orders(1300, 1), 5*time.Second)[0]
		for _, k := range []string{"request_id", "eid", "iccid", "msisdn", "state"} {
			if out.Result[k] == "" {
				t.Errorf("result lacks %s: %v", k, out.Result)
			}
		}
	})
	t.Run("LookupPendingThenDrift", func(t *testing.T) {
		e := start(t, providertest.Setup{AsyncDelay: time.Hour}, thingspace.SimOptions{}, mode{})
		o := order(1400)
		if out := e.client.Submit(context.Background(), []providers.Order{o})[0]; out.Status != providers.Accepted {
			t.Fatalf("submit: %s", out.Status)
		}
		sub, err := e.client.Lookup(context.Background(), o)
		if err != nil || !sub.Found || !sub.Pending || sub.Active {
			t.Errorf("lookup while activating: %+v %v, want found and pending", sub, err)
		}
		e2 := start(t, providertest.Setup{}, thingspace.SimOptions{}, mode{})
		providertest.Complete(t, e2.pair, []providers.Order{o}, 5*time.Second)
		e2.sim.SetState(o.EID, thingspace.StateSuspend)
		e2.sim.Alter(o.EID, "iccid", "89012600000000000009")
		sub, err = e2.client.Lookup(context.Background(), o)
		if err != nil || !sub.Found || sub.Active || sub.State != "Suspend" || sub.Identifiers["iccid"] != "89012600000000000009" {
			t.Errorf("lookup after drift: %+v %v", sub, err)
		}
		e2.sim.Forget(o.EID)
		if sub, err = e2.client.Lookup(context.Background(), o); err != nil || sub.Found {
			t.Errorf("lookup after Forget: %+v %v", sub, err)
		}
	})
	t.Run("RegistrationAndRestart", func(t *testing.T) {
		e := start(t, providertest.Setup{AsyncDelay: 300 * time.Millisecond}, thingspace.SimOptions{}, callbackMode)
		prefix := "http://" + e.client.CallbackAddr().String() + "/callbacks/"
		got := e.sim.CallbackURL(testAccount)
		if tok, ok := strings.CutPrefix(got, prefix); !ok || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(tok) {
			t.Errorf("registered %q, want %s<32 hex digits>", got, prefix)
		} else if log := e.client.CallbackURLForLog(); log != prefix+tok[:4]+"…" {
			t.Errorf("URL for logs %q carries more than 4 characters of the token", log)
		}
		o := order(1500)
		out := e.client.Submit(context.Background(), []providers.Order{o})[0]
		_ = e.client.Close() // simbulk stops before the callback comes
		// A new process: new listener, registered again at Start.
		c2, err := thingspace.New(thingspace.Config{
			BaseURL: e.pair.URL, Key: thingspace.SimKey, Secret: thingspace.SimSecret,
			Username: thingspace.SimUsername, Password: thingspace.SimPassword, AccountName: testAccount,
			Callback:      &thingspace.CallbackConfig{Listen: "127.0.0.1:0", Username: cbUser, Password: cbPassword},
			CallbackGrace: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if err := c2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		p2 := e.pair
		p2.Client = c2
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if final := providertest.Await(t, ctx, p2, o, out); final.Status != providers.Succeeded {
			t.Errorf("after restart: %s %v", final.Status, final.Err)
		}
	})
	t.Run("RegistrationRefusedStopsListener", func(t *testing.T) {
		sim := thingspace.NewSimulator(thingspace.SimOptions{})
		defer sim.Close()
		srv := httptestServer(t, sim)
		c, err := thingspace.New(thingspace.Config{
			BaseURL: srv, Key: thingspace.SimKey, Secret: thingspace.SimSecret,
			Username: thingspace.SimUsername, Password: thingspace.SimPassword, AccountName: "not-an-account",
			Callback: &thingspace.CallbackConfig{Listen: "127.0.0.1:0", Username: cbUser, Password: cbPassword},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "register") || strings.Contains(err.Error(), cbPassword) {
			t.Errorf("Start: %v, want a registration error without the password", err)
		}
		if c.CallbackAddr() != nil {
			t.Errorf("listener left running after a failed Start")
		}
	})
}

func httptestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// delivery is a DeviceProfileService callback body.
func delivery(user, pass, requestID, eid string) []byte {
	b, _ := json.Marshal(map[string]any{
		"username": user, "password": pass, "requestId": requestID,
		"deviceIds": []map[string]string{{"kind": "eid", "id": eid}},
		"deviceResponse": map[string]any{"deviceProfileResponse": map[string]any{
			"state": "Active", "profileStatus": "ENABLE", "euiccStatus": "EXECUTED_SUCCESS",
		}},
		"status": "SUCCESS", "callbackCount": "1", "maxCallbackThreshold": "4",
	})
	return b
}

// deliver posts a callback body to the URL the client registered.
func deliver(t *testing.T, e *env, body []byte) int {
	t.Helper()
	resp, err := http.Post(e.sim.CallbackURL(testAccount), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post delivery: %v", err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}
