package asavie_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/providertest"
	"github.com/simbulk/simbulk/providers/simkit"
)

// extra runs the Asavie-specific cases of the conformance suite.
func extra(t *testing.T, h providertest.Harness) {
	t.Run("StatusURLNotReencoded", testStatusURLNotReencoded)
	t.Run("AcceptHeaderOnEveryRequest", testAcceptHeader)
	t.Run("ConflictSameSIM", testConflictSameSIM)
	t.Run("ConflictDifferentSIM", testConflictDifferentSIM)
	t.Run("ConflictOtherAccount", testConflictOtherAccount)
	t.Run("ConflictWhilePending", testConflictWhilePending)
	t.Run("EnvelopeServerErrorUnderHTTP200", testEnvelope500)
	t.Run("UnknownAccount", testUnknownAccount)
	t.Run("AsyncFailure", testAsyncFailure)
	t.Run("LookupPendingThenReady", testLookupPending)
	t.Run("Drift", testDrift)
	t.Run("ExpiredStatusURL", testExpiredStatusURL)
	t.Run("WrongCredentials", testWrongCredentials)
}

func complete(t *testing.T, e env, o providers.Order) providers.Outcome {
	t.Helper()
	p := providertest.Pair{Client: e.client, Kit: e.sim.Kit(), URL: e.url, ExpireTokens: e.sim.ExpireTokens}
	return providertest.Complete(t, p, []providers.Order{o}, 10*time.Second)[0]
}

// testStatusURLNotReencoded: the StatusUrl is sent back byte for byte in
// both of its forms, the captured ".../status?cmdid=<percent-encoded>"
// and the ".../status/{id}" of the alternate form.
func testStatusURLNotReencoded(t *testing.T) {
	for _, forms := range []simkit.Forms{simkit.Documented, simkit.Alternate} {
		for _, account := range []string{testAccount, "acme ltd/uk+eu"} {
			t.Run(forms.String()+"/"+account, func(t *testing.T) {
				statusURLRoundTrip(t, forms, account)
			})
		}
	}
}

func statusURLRoundTrip(t *testing.T, forms simkit.Forms, account string) {
	e := startEnv(t, providertest.Setup{AsyncDelay: 50 * time.Millisecond, Forms: forms}, asavie.Config{})
	o := order(3)
	o.Fields["account"] = account
	out := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Accepted {
		t.Fatalf("submit %s %v", out.Status, out.Err)
	}
	want := "/v1/accounts/" + map[string]string{
		testAccount:      "acme%20ltd",
		"acme ltd/uk+eu": "acme%20ltd%2Fuk%2Beu",
	}[account] + "/hardware/sims/%28%2B44%2977009" + "00003/status" + map[simkit.Forms]string{
		simkit.Documented: "?cmdid=",
		simkit.Alternate:  "/",
	}[forms]
	if !strings.HasPrefix(out.Handle, want) || out.Result["status_url"] != out.Handle {
		t.Fatalf("handle %q, want prefix %q and status_url in Result", out.Handle, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	p := providertest.Pair{Client: e.client, Kit: e.sim.Kit()}
	final := providertest.Await(t, ctx, p, o, out)
	cancel()
	if final.Status != providers.Succeeded {
		t.Fatalf("%s %v", final.Status, final.Err)
	}
	polls := 0
	for _, r := range e.rec.requests() {
		if r.Method != http.MethodGet || !strings.Contains(r.EscapedPath, "/status") {
			continue
		}
		polls++
		if r.RequestURI != out.Handle {
			t.Errorf("status poll arrived as %q, want exactly %q", r.RequestURI, out.Handle)
		}
	}
	if polls == 0 {
		t.Errorf("no status polls recorded")
	}
	if final.Result["cli"] != o.CLI || final.Result["sim_number"] != o.ICCID || final.Result["state"] != "ready" {
		t.Errorf("result %v, want cli, sim_number and state ready", final.Result)
	}
}

func testAcceptHeader(t *testing.T) {
	e := startEnv(t, providertest.Setup{}, asavie.Config{})
	o := order(4)
	complete(t, e, o)
	if _, err := e.client.Lookup(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.rec.requests() {
		if r.Accept != "application/json" {
			t.Errorf("%s %s sent Accept %q", r.Method, r.EscapedPath, r.Accept)
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.EscapedPath, "/hardware/sims") && r.ContentType != "application/json" {
			t.Errorf("provisioning request Content-Type %q", r.ContentType)
		}
	}
}

// bothForms runs a case against the simulator in each public form.
func bothForms(t *testing.T, test func(t *testing.T, forms simkit.Forms)) {
	for _, forms := range []simkit.Forms{simkit.Documented, simkit.Alternate} {
		t.Run(forms.String(), func(t *testing.T) { test(t, forms) })
	}
}

// testConflictSameSIM: a CLI that exists, answered with the 409 in Code
// (documented form) or in ErrorCode only (alternate form), is looked up
// and, being the row's SIM, succeeds.
func testConflictSameSIM(t *testing.T) { bothForms(t, conflictSameSIM) }

func conflictSameSIM(t *testing.T, forms simkit.Forms) {
	e := startEnv(t, providertest.Setup{Forms: forms}, asavie.Config{})
	o := order(5)
	if out := complete(t, e, o); out.Status != providers.Succeeded {
		t.Fatalf("first: %s %v", out.Status, out.Err)
	}
	out := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Succeeded || out.Result["note"] != "already existed" {
		t.Fatalf("resubmit of the same SIM: %s %v %v, want succeeded, already existed", out.Status, out.Result, out.Err)
	}
	// A row without an ICCID matches any SIM with its CLI.
	o.ICCID = ""
	if out := e.client.Submit(context.Background(), []providers.Order{o})[0]; out.Status != providers.Succeeded {
		t.Errorf("resubmit without ICCID: %s %v", out.Status, out.Err)
	}
	if e.sim.Count() != 1 {
		t.Errorf("simulator holds %d SIMs, want 1", e.sim.Count())
	}
}

func testConflictDifferentSIM(t *testing.T) { bothForms(t, conflictDifferentSIM) }

func conflictDifferentSIM(t *testing.T, forms simkit.Forms) {
	e := startEnv(t, providertest.Setup{Forms: forms}, asavie.Config{})
	o := order(6)
	other := withLuhn("894410000000099999")
	e.sim.Seed(testAccount, asavie.SIMCard{CLI: o.CLI, SIMNumber: other, State: asavie.StateLive})
	out := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Failed || out.Err == nil {
		t.Fatalf("%s, want failed", out.Status)
	}
	if out.Err.Code != providers.CodeConflict || out.Err.Retryable || out.Err.MaybeApplied {
		t.Errorf("err %+v, want permanent conflict", out.Err)
	}
	// Crash recovery looks it up: found, and said to be another SIM.
	if sub, err := e.client.Lookup(context.Background(), o); err != nil || !sub.Found || !strings.Contains(sub.Conflict, other) {
		t.Errorf("lookup: %+v %v, want found with a conflict naming %s", sub, err, other)
	}
	for _, s := range []string{o.CLI, other, o.ICCID} {
		if !strings.Contains(out.Err.Message, s) {
			t.Errorf("message %q does not name %s", out.Err.Message, s)
		}
	}
	if got := e.sim.Kit().ProvisionCount(o.CLI); got != 1 {
		t.Errorf("provisioning requests %d, want 1", got)
	}
}

func testConflictOtherAccount(t *testing.T) {
	e := startEnv(t, providertest.Setup{}, asavie.Config{})
	o := order(7)
	e.sim.Seed("someone else", asavie.SIMCard{CLI: o.CLI, SIMNumber: o.ICCID, State: asavie.StateReady})
	out := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Failed || out.Err.Code != providers.CodeConflict || out.Err.Retryable {
		t.Fatalf("%s %+v, want permanent conflict", out.Status, out.Err)
	}
	if !strings.Contains(out.Err.Message, "not on account") {
		t.Errorf("message %q", out.Err.Message)
	}
}

func testConflictWhilePending(t *testing.T) {
	e := startEnv(t, providertest.Setup{AsyncDelay: 300 * time.Millisecond}, asavie.Config{})
	o := order(8)
	first := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if first.Status != providers.Accepted {
		t.Fatalf("first: %s %v", first.Status, first.Err)
	}
	second := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if second.Status != providers.Accepted || second.Result["note"] != "already existed" {
		t.Fatalf("second while pending: %s %v %v, want accepted, already existed", second.Status, second.Result, second.Err)
	}
	if strings.Contains(second.Handle, "/status") {
		t.Errorf("handle %q: want the SIM resource", second.Handle)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := providertest.Pair{Client: e.client, Kit: e.sim.Kit()}
	if final := providertest.Await(t, ctx, p, o, second); final.Status != providers.Succeeded {
		t.Errorf("following the SIM resource: %s %v", final.Status, final.Err)
	}
}

func testEnvelope500(t *testing.T) {
	e := startEnv(t, providertest.Setup{}, asavie.Config{})
	o := order(9)
	e.sim.FailNext(1)
	out := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Failed {
		t.Fatalf("HTTP 200 with Success:false, Code 500: %s, want failed", out.Status)
	}
	if !out.Err.Retryable || !out.Err.MaybeApplied || out.Err.HTTPStatus != 500 || out.Err.Code != "5000" {
		t.Errorf("err %+v, want retryable, maybe applied, status 500, code 5000", out.Err)
	}
	if e.sim.Count() != 0 {
		t.Errorf("SIM created despite Code 500")
	}
	if out := complete(t, e, o); out.Status != providers.Succeeded {
		t.Errorf("after the failure: %s %v", out.Status, out.Err)
	}
}

func testUnknownAccount(t *testing.T) {
	e := startEnv(t, providertest.Setup{}, asavie.Config{})
	o := order(10)
	o.Fields["account"] = "unknown-co"
	out := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Failed || out.Err.Retryable || out.Err.HTTPStatus != 404 || out.Err.Code != "1404" {
		t.Fatalf("%s %+v, want permanent 404 with ErrorCode 1404", out.Status, out.Err)
	}
	if !strings.Contains(out.Err.Message, "unknown-co") {
		t.Errorf("message %q", out.Err.Message)
	}
	delete(o.Fields, "account")
	out = e.client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Failed || out.Err.Code != providers.CodeRejected || out.Err.Retryable {
		t.Errorf("no account: %s %+v", out.Status, out.Err)
	}
}

func testAsyncFailure(t *testing.T) {
	e := startEnv(t, providertest.Setup{}, asavie.Config{})
	o := order(11)
	last := o.ICCID[len(o.ICCID)-1]
	o.ICCID = o.ICCID[:len(o.ICCID)-1] + string('0'+(last-'0'+1)%10) // break the check digit
	out := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Accepted {
		t.Fatalf("submit: %s %v", out.Status, out.Err)
	}
	final := e.client.Check(context.Background(), o, out.Handle)
	if final.Status != providers.Failed || final.Err.Retryable || final.Err.Code != "2105" {
		t.Fatalf("check: %s %+v, want permanent failure 2105", final.Status, final.Err)
	}
	if final.Result["status_url"] != out.Handle {
		t.Errorf("result %v lacks status_url", final.Result)
	}
	if sub, err := e.client.Lookup(context.Background(), o); err != nil || sub.Found {
		t.Errorf("lookup after failure: %+v %v, want not found", sub, err)
	}
}

func testLookupPending(t *testing.T) {
	e := startEnv(t, providertest.Setup{AsyncDelay: 300 * time.Millisecond}, asavie.Config{})
	o := order(12)
	if out := e.client.Submit(context.Background(), []providers.Order{o})[0]; out.Status != providers.Accepted {
		t.Fatalf("submit: %s %v", out.Status, out.Err)
	}
	sub, err := e.client.Lookup(context.Background(), o)
	if err != nil || !sub.Found || !sub.Pending || sub.Active || sub.State != "notactivated" {
		t.Fatalf("lookup while creating: %+v %v, want found, pending, not active", sub, err)
	}
	time.Sleep(350 * time.Millisecond)
	sub, err = e.client.Lookup(context.Background(), o)
	if err != nil || !sub.Found || sub.Pending || !sub.Active || sub.State != "ready" {
		t.Fatalf("lookup after creation: %+v %v, want found, ready, active", sub, err)
	}
	if sub.Identifiers["cli"] != o.CLI || sub.Identifiers["iccid"] != o.ICCID {
		t.Errorf("identifiers %v", sub.Identifiers)
	}
}

func testDrift(t *testing.T) {
	e := startEnv(t, providertest.Setup{}, asavie.Config{})
	o := order(13)
	complete(t, e, o)
	lookup := func() providers.Subscription {
		t.Helper()
		sub, err := e.client.Lookup(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	if !e.sim.SetState(o.CLI, "suspend") {
		t.Fatal("SetState refused")
	}
	if sub := lookup(); sub.State != "suspend" || sub.Active {
		t.Errorf("suspended: %+v", sub)
	}
	if e.sim.SetState(o.CLI, "dormant") {
		t.Errorf("SetState accepted an unknown state")
	}
	if !e.sim.Alter(o.CLI, "sim_number", "89441000000000000000") {
		t.Fatal("Alter refused")
	}
	if sub := lookup(); sub.Identifiers["iccid"] != "89441000000000000000" {
		t.Errorf("altered: %+v", sub)
	}
	if !e.sim.Forget(o.CLI) || e.sim.Forget(o.CLI) {
		t.Fatal("Forget: want true once, then false")
	}
	if sub := lookup(); sub.Found {
		t.Errorf("forgotten SIM found: %+v", sub)
	}
}

// testExpiredStatusURL: a StatusUrl Asavie no longer knows (404), in
// either form, is answered by looking the SIM up.
func testExpiredStatusURL(t *testing.T) {
	const sims = "/v1/accounts/acme%20ltd/hardware/sims/%28%2B44%29"
	for name, tail := range map[string]string{
		"by id":    "/status/00000000000000000000000000000000",
		"by cmdid": "/status?cmdid=Z2EvOWB9EDgRdW1qYitvNyYr%2FODVu%3D%3D",
	} {
		t.Run(name, func(t *testing.T) {
			e := startEnv(t, providertest.Setup{}, asavie.Config{})
			o := order(14)
			complete(t, e, o)
			out := e.client.Check(context.Background(), o, sims+"7700900014"+tail)
			if out.Status != providers.Succeeded || out.Result["cli"] != o.CLI || out.Result["note"] != "status URL expired; SIM found" {
				t.Errorf("unknown status URL of a created SIM: %s %v %v, want succeeded via lookup", out.Status, out.Result, out.Err)
			}
			other := order(15)
			out = e.client.Check(context.Background(), other, sims+"7700900015"+tail)
			if out.Status != providers.Failed || out.Err.HTTPStatus != http.StatusNotFound || out.Err.Retryable {
				t.Errorf("unknown status URL and SIM: %s %+v, want permanent not_found", out.Status, out.Err)
			}
		})
	}
}

func testWrongCredentials(t *testing.T) {
	const secret = "wrong-secret-Xq7!"
	e := startEnv(t, providertest.Setup{}, asavie.Config{ClientSecret: secret})
	o := order(16)
	out := e.client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Failed || out.Err.Code != providers.CodeCredentials || out.Err.Retryable || out.Err.MaybeApplied {
		t.Fatalf("%s %+v, want permanent credentials_refused", out.Status, out.Err)
	}
	_, lerr := e.client.Lookup(context.Background(), o)
	chk := e.client.Check(context.Background(), o, "/v1/accounts/x/hardware/sims/1/status/2")
	for _, text := range []string{out.Err.Error(), lerr.Error(), chk.Err.Error()} {
		if strings.Contains(text, secret) {
			t.Errorf("secret in %q", text)
		}
	}
	if got := e.sim.Kit().ProvisionCount(o.CLI); got != 0 {
		t.Errorf("provisioning requests %d without a token", got)
	}
}
