package asavie_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/providertest"
)

// The row every fixture is read for: the account, CLI and SIM number of
// the SIM in the GraphDefined/AsavieAPI captures.
const (
	fixtureAccount = "cardilink"
	fixtureCLI     = "204046868148000"
	fixtureICCID   = "89314404000452386593"
	// fixtureHandle is the StatusUrl captured from the live API, the handle
	// every "check" fixture is read for.
	fixtureHandle = "/v1/accounts/cardilink/hardware/sims/204046868148000/status?cmdid=Z2EvOWB9EDgRdW1qYitvNyYrODVuHGE3cj9gSBQpHnQfIig1KXIOXxAEBR9ddyJcT21ec05%2FLEZuOyEsYG89aTRBo%2FQzOTA0MnFqMVEWen95DVYlYj42MTBpYSw1OigpJDAzbG0%2FIkFvTXo9MzkE"
	// lookupFixture names the fixture whose body answers the lookups that
	// other calls make (after a 409, after an expired status URL).
	lookupFixture = "captured-lookup"
)

// TestFixtures serves each golden answer in testdata with its HTTP status
// at the path its call uses, runs the real client call, and compares what
// the client read with the fixture's want section.
func TestFixtures(t *testing.T) {
	fixtures := providertest.Fixtures(t, "testdata")
	var lookupBody []byte
	for _, f := range fixtures {
		if f.Name == lookupFixture {
			lookupBody = f.Body
		}
	}
	if lookupBody == nil {
		t.Fatalf("no %s fixture to answer lookups with", lookupFixture)
	}
	for _, f := range fixtures {
		t.Run(f.Name, func(t *testing.T) {
			srv := httptest.NewServer(fixtureAPI(t, f, lookupBody))
			defer srv.Close()
			c, err := asavie.New(asavie.Config{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret"})
			if err != nil {
				t.Fatal(err)
			}
			o := providers.Order{Key: "row-1", CLI: fixtureCLI, ICCID: fixtureICCID, Fields: map[string]string{"account": fixtureAccount}}
			var got map[string]string
			switch f.Call {
			case "submit":
				got = outcomeRead(c.Submit(context.Background(), []providers.Order{o})[0])
			case "check":
				got = outcomeRead(c.Check(context.Background(), o, fixtureHandle))
			case "lookup":
				sub, err := c.Lookup(context.Background(), o)
				got = lookupRead(sub, err)
			default:
				t.Fatalf("unknown Call %q", f.Call)
			}
			containsRead(f, got)
			providertest.Compare(t, f, got)
		})
	}
}

// fixtureAPI answers the fixture's call with its body and status, lookups
// of the row's SIM with the captured SIM, and tokens for any client.
// Anything else is a request the client should not have made.
func fixtureAPI(t *testing.T, f providertest.Fixture, lookupBody []byte) http.HandlerFunc {
	const sims = "/v1/accounts/" + fixtureAccount + "/hardware/sims"
	return func(w http.ResponseWriter, r *http.Request) {
		write := func(status int, body []byte) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}
		uri := r.RequestURI
		switch {
		case r.Method == http.MethodPost && uri == "/v1/authtoken":
			write(http.StatusOK, []byte(`{"access_token":"tok","token_type":"bearer","expires_in":3600}`))
		case f.Call == "submit" && r.Method == http.MethodPost && uri == sims,
			f.Call == "check" && r.Method == http.MethodGet && uri == fixtureHandle,
			f.Call == "lookup" && r.Method == http.MethodGet && uri == sims+"/"+fixtureCLI:
			write(f.HTTP, f.Body)
		case r.Method == http.MethodGet && uri == sims+"/"+fixtureCLI:
			write(http.StatusOK, lookupBody)
		default:
			t.Errorf("unexpected request %s %s", r.Method, uri)
			write(http.StatusNotFound, []byte(`{"Success":false,"Code":404}`))
		}
	}
}

// outcomeRead is what a fixture's want section may ask of an Outcome.
func outcomeRead(out providers.Outcome) map[string]string {
	got := map[string]string{"status": string(out.Status), "handle": out.Handle}
	for k, v := range out.Result {
		got[k] = v
	}
	errorRead(got, out.Err)
	return got
}

// lookupRead is what a fixture's want section may ask of a Lookup.
func lookupRead(sub providers.Subscription, err error) map[string]string {
	got := map[string]string{
		"status":     "ok",
		"found":      strconv.FormatBool(sub.Found),
		"active":     strconv.FormatBool(sub.Active),
		"pending":    strconv.FormatBool(sub.Pending),
		"state":      sub.State,
		"cli":        sub.Identifiers["cli"],
		"sim_number": sub.Identifiers["iccid"],
		"conflict":   sub.Conflict,
	}
	if err != nil {
		got["status"] = "failed"
		errorRead(got, providers.AsError(err))
	}
	return got
}

func errorRead(got map[string]string, e *providers.Error) {
	if e == nil {
		got["code"] = ""
		return
	}
	got["code"] = e.Code
	got["http"] = strconv.Itoa(e.HTTPStatus)
	got["retryable"] = strconv.FormatBool(e.Retryable)
	got["maybe_applied"] = strconv.FormatBool(e.MaybeApplied)
	got["message"] = e.Message
}

// containsRead answers want keys beginning "message_contains": the wanted
// text itself when the message contains it, the whole message otherwise,
// so a mismatch shows what the client said.
func containsRead(f providertest.Fixture, got map[string]string) {
	for k, want := range f.Want {
		if !strings.HasPrefix(k, "message_contains") {
			continue
		}
		got[k] = fmt.Sprintf("message %q", got["message"])
		if want != "" && strings.Contains(got["message"], want) {
			got[k] = want
		}
	}
}
