package iotconnect_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/providertest"
	"github.com/simbulk/simbulk/providers/simkit"
)

func TestConformance(t *testing.T) { providertest.Run(t, harness) }

var harness = providertest.Harness{
	Name:       "iotconnect",
	BatchSize:  1,
	Start:      func(t *testing.T, s providertest.Setup) providertest.Pair { return start(t, s, nil).Pair },
	Order:      order,
	Rejected:   rejected,
	Identifier: func(o providers.Order) string { return o.EID },
	Extra:      extra,
}

// running is a Pair with the concrete simulator and client, for the
// provider-specific cases.
type running struct {
	providertest.Pair
	Sim    *iotconnect.Simulator
	Client *iotconnect.Client
}

// wrongSecret is the client secret of Setup.WrongCredentials.
const wrongSecret = "not-the-secret-9f8e7d"

// start runs a simulator in s.Forms and a client for it, with a secret the
// simulator refuses when s.WrongCredentials; tweak, if set, adjusts the
// client's config.
func start(t *testing.T, s providertest.Setup, tweak func(*iotconnect.Config)) running {
	t.Helper()
	sim := iotconnect.NewSimulator(iotconnect.SimOptions{Faults: s.Faults, AsyncDelay: s.AsyncDelay, Forms: s.Forms})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := iotconnect.Config{
		BaseURL:       srv.URL,
		TokenURL:      srv.URL + iotconnect.SimTokenPath,
		ClientID:      iotconnect.SimClientID,
		ClientSecret:  iotconnect.SimClientSecret,
		Timeout:       s.ClientTimeout,
		MaxRetryAfter: s.MaxRetryAfter,
		PollInterval:  s.PollInterval,
	}
	if s.WrongCredentials {
		cfg.ClientSecret = wrongSecret
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := iotconnect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return running{
		Pair:   providertest.Pair{Client: c, Kit: sim.Kit(), URL: srv.URL, ExpireTokens: sim.ExpireTokens},
		Sim:    sim,
		Client: c,
	}
}

// eid returns the i-th valid EID: a 30-digit prefix and its MOD 97-10
// check digits, 98 - (prefix*100 mod 97).
func eid(i int) string {
	p := fmt.Sprintf("890490321234512345%012d", i)
	r := 0
	for _, c := range p {
		r = (r*10 + int(c-'0')) % 97
	}
	return fmt.Sprintf("%s%02d", p, 98-r*100%97)
}

func order(i int) providers.Order {
	o := providers.Order{
		Key: fmt.Sprintf("row-%d", i),
		EID: eid(i),
		Fields: map[string]string{
			"cmp":                "IOTA_EU",
			"euicc_agreement_id": "AGR-DEMO-0001",
			"locale_id":          "en_GB",
		},
	}
	if i%2 == 1 { // both with and without the optional domain
		o.Fields["domain_id"] = "a1ce25s2-c23edcs9"
	}
	return o
}

// rejected is an order with a CMP outside the documented enum.
func rejected(i int) providers.Order {
	o := order(1000 + i)
	o.Fields["cmp"] = "VODAFONE_DE"
	return o
}

func TestEIDHelperMakesValidEIDs(t *testing.T) {
	for i := range 50 {
		e := eid(i)
		r := 0
		for _, c := range e {
			r = (r*10 + int(c-'0')) % 97
		}
		if len(e) != 32 || r != 1 {
			t.Fatalf("eid(%d) = %s: len %d, mod 97 = %d", i, e, len(e), r)
		}
	}
	// The design document's example is valid by the same arithmetic.
	r := 0
	for _, c := range "89049032123451234512345678901235" {
		r = (r*10 + int(c-'0')) % 97
	}
	if r != 1 {
		t.Fatalf("reference EID mod 97 = %d", r)
	}
}

func extra(t *testing.T, h providertest.Harness) {
	t.Run("AlreadyRegisteredSameAgreement", testAlreadyRegisteredSame)
	t.Run("AlreadyRegisteredWhilePending", testAlreadyRegisteredPending)
	t.Run("AlreadyRegisteredOtherProfile", testAlreadyRegisteredOtherProfile)
	t.Run("AlreadyRegisteredOtherAgreement", testAlreadyRegisteredOtherAgreement)
	t.Run("RecoveredAfterCrash", testRecoveredAfterCrash)
	t.Run("ValidationEnvelope", testValidationEnvelope)
	t.Run("LookupPending", testLookupPending)
	t.Run("LookupModes", func(t *testing.T) {
		t.Run("Documented", func(t *testing.T) { testLookupModes(t, simkit.Documented) })
		t.Run("Alternate", func(t *testing.T) { testLookupModes(t, simkit.Alternate) })
	})
	t.Run("DriftHooks", testDriftHooks)
	t.Run("IoTSubscription", testIoTSubscription)
	t.Run("SucceededResult", func(t *testing.T) {
		t.Run("Documented", func(t *testing.T) { testSucceededResult(t, simkit.Documented) })
		t.Run("Alternate", func(t *testing.T) { testSucceededResult(t, simkit.Alternate) })
	})
	t.Run("WrongSecret", testWrongSecret)
	t.Run("CancelledBeforeSend", testCancelledBeforeSend)
	t.Run("CheckThroughTransientFault", testCheckTransient)
}

func mustComplete(t *testing.T, r running, o providers.Order) providers.Outcome {
	t.Helper()
	out := providertest.Complete(t, r.Pair, []providers.Order{o}, 10*time.Second)[0]
	if out.Status != providers.Succeeded {
		t.Fatalf("order %s: %s %v", o.Key, out.Status, out.Err)
	}
	return out
}

func testAlreadyRegisteredSame(t *testing.T) {
	r := start(t, providertest.Setup{}, nil)
	o := order(3)
	first := mustComplete(t, r, o)
	// The same registration again (a rerun, or a retry after a lost answer):
	// reported as done, with the same identifiers.
	again := r.Client.Submit(context.Background(), []providers.Order{o})[0]
	if again.Status != providers.Succeeded {
		t.Fatalf("re-registration under the same agreement: %s %v, want succeeded", again.Status, again.Err)
	}
	for _, k := range []string{"iccid", "imsi", "msisdn", "subscription_id"} {
		if again.Result[k] != first.Result[k] || again.Result[k] == "" {
			t.Errorf("%s: first %q, again %q", k, first.Result[k], again.Result[k])
		}
	}
	if again.Result["already_registered"] != "true" {
		t.Errorf("result does not say already_registered: %v", again.Result)
	}
	if n := r.Kit.ProvisionCount(o.EID); n != 2 {
		t.Errorf("simulator processed %d registrations, want 2 (the second refused)", n)
	}
	if n := r.Sim.Count(); n != 1 {
		t.Errorf("simulator holds %d records, want 1", n)
	}
}

func testAlreadyRegisteredPending(t *testing.T) {
	r := start(t, providertest.Setup{AsyncDelay: time.Hour}, nil)
	o := order(4)
	if out := r.Client.Submit(context.Background(), []providers.Order{o})[0]; out.Status != providers.Accepted {
		t.Fatalf("first: %s %v", out.Status, out.Err)
	}
	out := r.Client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Accepted || out.Handle != o.EID {
		t.Fatalf("again while pending: %s handle %q %v, want accepted with the EID", out.Status, out.Handle, out.Err)
	}
}

// testAlreadyRegisteredOtherProfile: an EID whose enabled profile is not
// the row's ICCID is somebody else's eUICC, in either form.
func testAlreadyRegisteredOtherProfile(t *testing.T) {
	for _, forms := range []simkit.Forms{simkit.Documented, simkit.Alternate} {
		t.Run(forms.String(), func(t *testing.T) {
			r := start(t, providertest.Setup{Forms: forms}, nil)
			o := order(5)
			mustComplete(t, r, o)
			rec, _ := r.Sim.Get(o.EID)
			other := order(5)
			other.ICCID = "89470001234567890128"
			out := r.Client.Submit(context.Background(), []providers.Order{other})[0]
			if out.Status != providers.Failed || out.Err == nil {
				t.Fatalf("registration of an EID with another profile enabled: %s, want failed", out.Status)
			}
			if out.Err.Code != providers.CodeConflict || out.Err.Retryable || out.Err.MaybeApplied || !strings.Contains(out.Err.Message, rec.ICCID) {
				t.Errorf("error %+v, want permanent conflict naming the enabled profile", out.Err)
			}
			// Crash recovery and reconciliation look it up: found, but not ours.
			sub, err := r.Client.Lookup(context.Background(), other)
			if err != nil || !sub.Found || !strings.Contains(sub.Conflict, "enabled") {
				t.Errorf("lookup with another ICCID: %+v %v, want found with a conflict", sub, err)
			}
			// The row's own ICCID, with or without its Luhn digit, is no conflict.
			for _, iccid := range []string{rec.ICCID, rec.ICCID[:len(rec.ICCID)-1]} {
				mine := order(5)
				mine.ICCID = iccid
				if sub, err := r.Client.Lookup(context.Background(), mine); err != nil || sub.Conflict != "" {
					t.Errorf("lookup with ICCID %s: %+v %v, want no conflict", iccid, sub, err)
				}
				if out := r.Client.Submit(context.Background(), []providers.Order{mine})[0]; out.Status != providers.Succeeded {
					t.Errorf("re-registration with ICCID %s: %s %v, want succeeded", iccid, out.Status, out.Err)
				}
			}
		})
	}
}

// testAlreadyRegisteredOtherAgreement: the documented eUICC answer carries
// no agreement, so another agreement cannot be seen and the eUICC counts as
// ours; an answer that does carry one (the alternate form) is compared.
func testAlreadyRegisteredOtherAgreement(t *testing.T) {
	for _, tc := range []struct {
		forms    simkit.Forms
		conflict bool
	}{{simkit.Documented, false}, {simkit.Alternate, true}} {
		t.Run(tc.forms.String(), func(t *testing.T) {
			r := start(t, providertest.Setup{Forms: tc.forms}, nil)
			o := order(5)
			mustComplete(t, r, o)
			other := order(5)
			other.Fields["euicc_agreement_id"] = "AGR-SOMEONE-ELSE"
			out := r.Client.Submit(context.Background(), []providers.Order{other})[0]
			sub, err := r.Client.Lookup(context.Background(), other)
			if err != nil || !sub.Found {
				t.Fatalf("lookup: %+v %v", sub, err)
			}
			if !tc.conflict {
				if out.Status != providers.Succeeded || sub.Conflict != "" {
					t.Errorf("no agreement in the answer: submit %s %v, lookup conflict %q; want succeeded, no conflict", out.Status, out.Err, sub.Conflict)
				}
				return
			}
			if out.Status != providers.Failed || out.Err.Code != providers.CodeConflict || out.Err.Retryable || out.Err.MaybeApplied {
				t.Errorf("submit under another agreement: %s %+v, want permanent conflict", out.Status, out.Err)
			}
			if !strings.Contains(sub.Conflict, "another eUICC agreement") {
				t.Errorf("lookup under another agreement: conflict %q", sub.Conflict)
			}
			if sub, err := r.Client.Lookup(context.Background(), o); err != nil || sub.Conflict != "" {
				t.Errorf("lookup under its own agreement: %+v %v, want no conflict", sub, err)
			}
		})
	}
}

// testRecoveredAfterCrash: a row whose answer was lost (registered at the
// provider, not recorded here) is found by Lookup as ours and active, and
// registering it again reports it done: no conflict, no drift.
func testRecoveredAfterCrash(t *testing.T) {
	r := start(t, providertest.Setup{}, nil)
	o := order(17)
	if out := r.Client.Submit(context.Background(), []providers.Order{o})[0]; out.Status != providers.Accepted {
		t.Fatalf("submit: %s %v", out.Status, out.Err)
	}
	sub, err := r.Client.Lookup(context.Background(), o)
	if err != nil || !sub.Found || sub.Pending || sub.Conflict != "" || !sub.Active || sub.State != iotconnect.ModeActive {
		t.Errorf("lookup after a lost answer: %+v %v, want found, active, ACTIVE from the IoT subscription, no conflict", sub, err)
	}
	if out := r.Client.Submit(context.Background(), []providers.Order{o})[0]; out.Status != providers.Succeeded || out.Result["already_registered"] != "true" {
		t.Errorf("resend after a lost answer: %s %v %v", out.Status, out.Result, out.Err)
	}
}

func testValidationEnvelope(t *testing.T) {
	r := start(t, providertest.Setup{}, nil)
	cases := []struct {
		name     string
		edit     func(*providers.Order)
		code     string
		contains string
	}{
		{"short EID", func(o *providers.Order) { o.EID = o.EID[:31] }, "INVALID_FORMAT", "path eid"},
		{"bad domain", func(o *providers.Order) { o.Fields["domain_id"] = "abc" }, "INVALID_FORMAT", "path domainId"},
		{"no locale", func(o *providers.Order) { delete(o.Fields, "locale_id") }, "REQUIRED", "path localeId"},
		{"no agreement", func(o *providers.Order) { delete(o.Fields, "euicc_agreement_id") }, "REQUIRED", "path euiccAgreementId"},
		{"bad cmp", func(o *providers.Order) { o.Fields["cmp"] = "iota_eu" }, "INVALID_VALUE", "path cmp"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := order(100 + i)
			tc.edit(&o)
			out := r.Client.Submit(context.Background(), []providers.Order{o})[0]
			if out.Status != providers.Failed || out.Err == nil {
				t.Fatalf("%s, want failed", out.Status)
			}
			e := out.Err
			if e.Code != tc.code || e.HTTPStatus != 400 || e.Retryable || e.MaybeApplied {
				t.Errorf("error %+v, want permanent 400 %s", e, tc.code)
			}
			if !strings.Contains(e.Message, tc.contains) {
				t.Errorf("message %q does not name %q", e.Message, tc.contains)
			}
		})
	}
	if r.Sim.Count() != 0 {
		t.Errorf("invalid registrations stored: %d", r.Sim.Count())
	}
}

func testLookupPending(t *testing.T) {
	r := start(t, providertest.Setup{AsyncDelay: time.Hour}, nil)
	o := order(6)
	out := r.Client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Accepted || out.Result["iccid"] == "" {
		t.Fatalf("submit: %s %v %v", out.Status, out.Result, out.Err)
	}
	sub, err := r.Client.Lookup(context.Background(), o)
	if err != nil || !sub.Found || !sub.Pending || sub.Active {
		t.Fatalf("lookup while pending: %+v %v, want found and pending", sub, err)
	}
	if sub.Identifiers["eid"] != o.EID {
		t.Errorf("identifiers %v", sub.Identifiers)
	}
	if c := r.Client.Check(context.Background(), o, out.Handle); c.Status != providers.Accepted || c.Handle != o.EID {
		t.Errorf("check while pending: %s %q", c.Status, c.Handle)
	}
}

// testLookupModes: Lookup reports the connectivity subscription's mode,
// embedded (alternate form) or read from the IoT subscription (documented).
func testLookupModes(t *testing.T, forms simkit.Forms) {
	r := start(t, providertest.Setup{Forms: forms}, nil)
	o := order(8)
	mustComplete(t, r, o)
	for _, tc := range []struct {
		mode   string
		active bool
	}{
		{"ACTIVE", true}, {"ACTIVE_NO_BILLING", true}, {"PAUSED", false},
		{"DEACTIVATED", false}, {"TERMINATED", false},
	} {
		if !r.Sim.SetState(o.EID, tc.mode) {
			t.Fatalf("SetState %s refused", tc.mode)
		}
		sub, err := r.Client.Lookup(context.Background(), o)
		if err != nil || !sub.Found || sub.Pending || sub.State != tc.mode || sub.Active != tc.active {
			t.Errorf("mode %s: %+v %v", tc.mode, sub, err)
		}
	}
	if r.Sim.SetState(o.EID, "SUSPENDED") {
		t.Errorf("SetState accepted a mode outside the enum")
	}
}

func testDriftHooks(t *testing.T) {
	r := start(t, providertest.Setup{}, nil)
	o := order(9)
	mustComplete(t, r, o)
	if !r.Sim.Alter(o.EID, "iccid", "89470009999999999995") {
		t.Fatal("Alter refused")
	}
	sub, err := r.Client.Lookup(context.Background(), o)
	if err != nil || sub.Identifiers["iccid"] != "89470009999999999995" {
		t.Errorf("after Alter: %+v %v", sub, err)
	}
	if !r.Sim.Forget(o.EID) {
		t.Fatal("Forget refused")
	}
	sub, err = r.Client.Lookup(context.Background(), o)
	if err != nil || sub.Found {
		t.Errorf("after Forget: %+v %v, want not found", sub, err)
	}
	// Preload puts a completed subscription in place without counting a
	// provisioning request.
	p := order(10)
	rec, err := r.Sim.Preload(iotconnect.Registration{EID: p.EID, CMP: "ARQIA_BR", EUICCAgreementID: "AGR-DEMO-0001", LocaleID: "pt_BR"})
	if err != nil || rec.Pending || rec.Mode != "ACTIVE" {
		t.Fatalf("Preload: %+v %v", rec, err)
	}
	sub, err = r.Client.Lookup(context.Background(), p)
	if err != nil || !sub.Active || sub.Identifiers["imsi"] != rec.IMSI {
		t.Errorf("lookup of preloaded: %+v %v", sub, err)
	}
	if r.Kit.ProvisionCount(p.EID) != 0 {
		t.Errorf("Preload counted as a provisioning request")
	}
	if _, err := r.Sim.Preload(iotconnect.Registration{EID: "123"}); err == nil {
		t.Errorf("Preload accepted an invalid registration")
	}
}

func testIoTSubscription(t *testing.T) {
	r := start(t, providertest.Setup{}, nil)
	o := order(11)
	out := mustComplete(t, r, o)
	id := out.Result["subscription_id"]
	if !iotconnect.ValidSubscriptionID(id) {
		t.Fatalf("subscription id %q does not match the intended pattern", id)
	}
	sub, found, err := r.Client.IoTSubscription(context.Background(), id)
	if err != nil || !found {
		t.Fatalf("IoTSubscription: %v found=%v", err, found)
	}
	if sub.ID != id || len(sub.EIDs) != 1 || sub.EIDs[0] != o.EID || sub.DomainID != "a1ce25s2-c23edcs9" {
		t.Errorf("subscription %+v", sub)
	}
	if len(sub.Connectivity) != 1 || sub.Connectivity[0].Mode != "ACTIVE" || sub.Connectivity[0].ICCID != out.Result["iccid"] {
		t.Errorf("connectivity %+v", sub.Connectivity)
	}
	// A well-formed id nobody has: not found, no error.
	if _, found, err := r.Client.IoTSubscription(context.Background(), "97ABCDEFGHJKLMNPQR"); err != nil || found {
		t.Errorf("unknown id: found=%v err=%v", found, err)
	}
	// The documents' buggy class would admit "58…"; the intent does not.
	if _, _, err := r.Client.IoTSubscription(context.Background(), "58ABCDEFGHJKLMNPQR"); err == nil {
		t.Errorf("id starting 58 accepted")
	}
}

// testSucceededResult: Check reports the identifiers and subscription id
// from one eUICC answer; the mode only when that answer embeds it (the
// alternate form), since Check does not wait for or fetch it.
func testSucceededResult(t *testing.T, forms simkit.Forms) {
	r := start(t, providertest.Setup{Forms: forms}, nil)
	o := order(12)
	out := mustComplete(t, r, o)
	rec, ok := r.Sim.Get(o.EID)
	if !ok {
		t.Fatal("simulator lost the record")
	}
	want := map[string]string{
		"eid": o.EID, "imsi": rec.IMSI, "iccid": rec.ICCID, "msisdn": rec.MSISDN,
		"subscription_id": rec.SubscriptionID, "mode": "",
	}
	if forms == simkit.Alternate {
		want["mode"] = "ACTIVE"
	}
	for k, v := range want {
		if out.Result[k] != v {
			t.Errorf("result[%s] = %q, want %q", k, out.Result[k], v)
		}
	}
	if rec.DomainID != iotconnect.SimDomainID {
		t.Errorf("registration without domainId landed in %q, want the caller's own domain", rec.DomainID)
	}
	if n := r.Kit.Stats().Requests[simkit.OpLookup]; n != 0 {
		t.Errorf("%d IoT subscription reads to complete a row, want 0", n)
	}
}

func testWrongSecret(t *testing.T) {
	r := start(t, providertest.Setup{WrongCredentials: true}, nil)
	o := order(13)
	out := r.Client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Failed || out.Err == nil || out.Err.Code != providers.CodeCredentials || out.Err.Retryable || out.Err.MaybeApplied {
		t.Fatalf("wrong secret: %s %+v, want credentials_refused, not retryable", out.Status, out.Err)
	}
	_, lerr := r.Client.Lookup(context.Background(), o)
	chk := r.Client.Check(context.Background(), o, o.EID)
	if chk.Status != providers.Failed || providers.CredentialsRefused(chk.Err) == nil {
		t.Errorf("check with a wrong secret: %s %+v, want credentials_refused", chk.Status, chk.Err)
	}
	for _, text := range []string{out.Err.Error(), fmt.Sprint(out), fmt.Sprint(lerr), fmt.Sprint(chk), fmt.Sprintf("%+v", chk.Err)} {
		if strings.Contains(text, wrongSecret) {
			t.Errorf("secret leaked: %s", text)
		}
	}
	if r.Kit.ProvisionCount(o.EID) != 0 {
		t.Errorf("registration sent without a token")
	}
}

func testCancelledBeforeSend(t *testing.T) {
	r := start(t, providertest.Setup{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	outs := r.Client.Submit(ctx, []providers.Order{order(14), order(15)})
	if len(outs) != 2 {
		t.Fatalf("%d outcomes for 2 orders", len(outs))
	}
	for _, out := range outs {
		if out.Status != providers.Failed || !out.Err.Retryable || out.Err.MaybeApplied {
			t.Errorf("cancelled before sending: %s %+v, want retryable, not maybe-applied", out.Status, out.Err)
		}
	}
	if n := r.Kit.Stats().ProvisionRequests; n != 0 {
		t.Errorf("%d registrations reached the simulator", n)
	}
}

func testCheckTransient(t *testing.T) {
	r := start(t, providertest.Setup{}, nil)
	o := order(16)
	out := r.Client.Submit(context.Background(), []providers.Order{o})[0]
	if out.Status != providers.Accepted {
		t.Fatalf("submit: %s %v", out.Status, out.Err)
	}
	for _, f := range []string{"429", "503", "500"} {
		r.Kit.Inject(simkit.OpStatus, simkit.Fault(f), 1)
		c := r.Client.Check(context.Background(), o, out.Handle)
		if c.Status != providers.Accepted || c.Handle != o.EID || c.Err == nil || !c.Err.Retryable {
			t.Errorf("check through %s: %s %q %+v, want accepted with a retryable error", f, c.Status, c.Handle, c.Err)
		}
	}
	// An answer it cannot read is not "still pending": it fails, retryable,
	// and the pipeline bounds how often (unreadable_answer).
	r.Kit.Inject(simkit.OpStatus, simkit.Garble, 1)
	c := r.Client.Check(context.Background(), o, out.Handle)
	if c.Status != providers.Failed || c.Err == nil || c.Err.Code != providers.CodeMalformed || !c.Err.Retryable || c.Err.MaybeApplied {
		t.Errorf("check through a garbled answer: %s %+v, want failed, retryable malformed, not maybe-applied", c.Status, c.Err)
	} else if !strings.Contains(c.Err.Message, `{"attributes"`) {
		t.Errorf("message %q does not quote the answer", c.Err.Message)
	}
	if c := r.Client.Check(context.Background(), o, out.Handle); c.Status != providers.Succeeded {
		t.Errorf("check after the faults: %s %v", c.Status, c.Err)
	}
}
