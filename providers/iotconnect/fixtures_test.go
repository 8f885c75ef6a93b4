package iotconnect_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/providertest"
)

// The portal's own example values, so that fixture bodies can stay
// verbatim: the EID of get-subscription's euiccs example, its IoT
// subscription id, and the ICCID register-e-uicc's example assigns.
const (
	fixtureEID   = "89000000000000000000000000000001"
	fixtureSubID = "8546U5LX6B24P3AZ8X"
	fixtureICCID = "89000000000000000001"
)

// cannedEUICC is a registered eUICC in the documented form, served where a
// fixture's call reads the eUICC after the fixture's own answer (submit
// after "already registered", mode after the eUICC).
const cannedEUICC = `{"attributes":{"eid":"` + fixtureEID + `","enabledProfile":"` + fixtureICCID + `","bootstrapProfile":"` + fixtureICCID + `"},
"relationships":{"iotSubscription":{"url":"/iot-connect/subscriptions/v1/iot-subscriptions/` + fixtureSubID + `","attributes":{"id":"` + fixtureSubID + `"}},
"profiles":[{"url":"/iot-connect/subscriptions/v1/profiles/` + fixtureICCID + `","attributes":{"iccid":"` + fixtureICCID + `","profileType":"VIRTUAL_PROFILE"}}],
"connectivitySubscriptions":[{"url":"/iot-connect/subscriptions/v1/connectivity-subscriptions/230000000000001","attributes":{"imsi":"230000000000001","iccid":"` + fixtureICCID + `","msisdn":"46000000001"}}]}}`

const notFound = `{"name":"NotFound","message":"The specified resource was not found","errors":[]}`

// TestFixtures serves each golden body of testdata with its HTTP status at
// the path its call reads, runs the real client call and compares what the
// client made of it with the fixture's want.
func TestFixtures(t *testing.T) {
	for _, f := range providertest.Fixtures(t, "testdata") {
		t.Run(f.Name, func(t *testing.T) {
			var tokens atomic.Int32
			srv := httptest.NewServer(fixtureHandler(t, f, &tokens))
			defer srv.Close()
			c, err := iotconnect.New(iotconnect.Config{
				BaseURL: srv.URL, TokenURL: srv.URL + "/oauth2/token",
				ClientID: "id", ClientSecret: testSecret, Timeout: 2 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			got := runFixture(t, c, f)
			got["tokens"] = strconv.Itoa(int(tokens.Load()))
			providertest.Compare(t, f, got)
			if strings.Contains(fmt.Sprint(got), testSecret) {
				t.Errorf("secret in %v", got)
			}
		})
	}
}

func fixtureOrder() providers.Order {
	return providers.Order{
		Key: "row-1", EID: fixtureEID, ICCID: fixtureICCID,
		Fields: map[string]string{"cmp": "IOTA_EU", "euicc_agreement_id": "AGR-DEMO-0001", "locale_id": "en_GB"},
	}
}

// fixtureHandler answers the token endpoint, the fixture at the path of its
// call, the canned eUICC where the call reads it besides, and 404 for an
// IoT subscription the fixture does not provide.
func fixtureHandler(t *testing.T, f providertest.Fixture, tokens *atomic.Int32) http.HandlerFunc {
	const (
		euiccs = "/iot-connect/subscriptions/v1/euiccs"
		euicc  = euiccs + "/" + fixtureEID
		sub    = "/iot-connect/subscriptions/v1/iot-subscriptions/" + fixtureSubID
	)
	fixturePath := map[string]string{"submit": euiccs, "check": euicc, "lookup": euicc, "subscription": sub, "mode": sub}[f.Call]
	if fixturePath == "" {
		t.Fatalf("unknown Call %q", f.Call)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oauth2/token":
			fmt.Fprintf(w, `{"access_token":"tok-%d","expires_in":3600}`, tokens.Add(1))
		case fixturePath:
			w.WriteHeader(f.HTTP)
			_, _ = w.Write(f.Body)
		case euicc:
			_, _ = w.Write([]byte(cannedEUICC))
		case sub:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(notFound))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusNotFound)
		}
	}
}

// runFixture makes the fixture's call and flattens what the client read.
func runFixture(t *testing.T, c *iotconnect.Client, f providertest.Fixture) map[string]string {
	ctx := context.Background()
	o := fixtureOrder()
	got := map[string]string{}
	switch f.Call {
	case "submit":
		outcome(got, f, c.Submit(ctx, []providers.Order{o})[0])
	case "check":
		outcome(got, f, c.Check(ctx, o, o.EID))
	case "lookup", "mode":
		s, err := c.Lookup(ctx, o)
		errorFields(got, f, err)
		got["found"] = strconv.FormatBool(s.Found)
		got["active"] = strconv.FormatBool(s.Active)
		got["pending"] = strconv.FormatBool(s.Pending)
		got["state"] = s.State
		got["conflict"] = strconv.FormatBool(s.Conflict != "")
		for k, v := range s.Identifiers {
			got[k] = v
		}
	case "subscription":
		s, found, err := c.IoTSubscription(ctx, fixtureSubID)
		errorFields(got, f, err)
		got["found"] = strconv.FormatBool(found)
		got["id"] = s.ID
		got["domain_id"] = s.DomainID
		got["eids"] = strings.Join(s.EIDs, ",")
		got["iccids"] = strings.Join(s.ICCIDs, ",")
		got["connectivity"] = strconv.Itoa(len(s.Connectivity))
		var modes []string
		for _, cs := range s.Connectivity {
			modes = append(modes, cs.Mode)
		}
		got["modes"] = strings.Join(modes, ",")
	}
	return got
}

func outcome(got map[string]string, f providertest.Fixture, out providers.Outcome) {
	got["status"] = string(out.Status)
	got["handle"] = out.Handle
	for k, v := range out.Result {
		got[k] = v
	}
	if out.Err != nil {
		errorFields(got, f, out.Err)
	}
}

// errorFields records an error's classification, and whether its message
// quotes the start of the provider's answer (quotes_body).
func errorFields(got map[string]string, f providertest.Fixture, err error) {
	if err == nil {
		return
	}
	e := providers.AsError(err)
	got["code"] = e.Code
	got["http"] = strconv.Itoa(e.HTTPStatus)
	got["retryable"] = strconv.FormatBool(e.Retryable)
	got["maybe_applied"] = strconv.FormatBool(e.MaybeApplied)
	start, _, _ := strings.Cut(strings.TrimSpace(string(f.Body)), "\n")
	got["quotes_body"] = strconv.FormatBool(strings.Contains(e.Message, start[:min(len(start), 16)]))
}
