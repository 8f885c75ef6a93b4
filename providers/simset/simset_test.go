package simset

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	_ "github.com/simbulk/simbulk/providers/all"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/simkit"
)

func TestRoutesStatsAndDrift(t *testing.T) {
	set := New(simkit.Faults{}, 0, simkit.Documented)
	defer set.Close()
	srv := httptest.NewServer(set)
	defer srv.Close()

	// Each provider's paths reach its own simulator: a request without
	// credentials is refused by that simulator, not answered 404.
	for _, path := range []string{"/iot-connect/subscriptions/v1/euiccs", "/v1/accounts/a/hardware/sims", "/api/m2m/v1/devices/actions/list"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode < 400 {
			t.Errorf("POST %s without credentials: %d, want the simulator's refusal", path, resp.StatusCode)
		}
	}
	if resp, err := http.Get(srv.URL + "/elsewhere"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %v %v, want 404", resp.StatusCode, err)
	}

	asv := set.Sim("asavie").(*asavie.Simulator)
	asv.Seed("acme", asavie.SIMCard{CLI: "(+44)7700900123", SIMNumber: "8944000000000000018", State: asavie.StateLive})
	post := func(body string) int {
		resp, err := http.Post(srv.URL+"/_sim/drift", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for body, want := range map[string]int{
		`{"provider":"asavie","id":"(+44)7700900123","action":"state","value":"suspend"}`: http.StatusNoContent,
		`{"provider":"asavie","id":"(+44)7700900999","action":"delete"}`:                  http.StatusNotFound,
		`{"provider":"vodafone","id":"x","action":"delete"}`:                              http.StatusBadRequest,
		`{"provider":"asavie","id":"x","action":"explode"}`:                               http.StatusBadRequest,
		`not json`: http.StatusBadRequest,
	} {
		if got := post(body); got != want {
			t.Errorf("drift %s: %d, want %d", body, got, want)
		}
	}
	if st := asv.Kit().Stats(); st.ProvisionRequests != 0 {
		t.Errorf("seeding counted %d provisioning requests", st.ProvisionRequests)
	}

	resp, err := http.Get(srv.URL + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats map[string]simkit.Stats
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"iotconnect", "asavie", "thingspace"} {
		if _, ok := stats[p]; !ok {
			t.Errorf("stats lack %s: %v", p, stats)
		}
	}
}
