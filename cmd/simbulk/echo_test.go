package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/simset"
	"github.com/simbulk/simbulk/samples"
)

// This file is a fourth provider, "echo", that exists only here: its
// descriptor, config block, client and simulator. TestEchoProvider
// registers it and takes it through validate, run (--simulate and with a
// config), report and reconcile, which proves that a provider needs
// nothing outside its own package but its registration.

const echoToken = "echo-demo-token"

// echoBlock is providers.echo in simbulk.yaml.
type echoBlock struct {
	BaseURL              string `yaml:"base_url"`
	Token                string `yaml:"token"`
	providers.LaneConfig `yaml:",inline"`
}

func (b *echoBlock) Lane() *providers.LaneConfig { return &b.LaneConfig }
func (b *echoBlock) Check() error                { return nil }
func (b *echoBlock) Credentials() []providers.Credential {
	return []providers.Credential{{Key: "base_url", Value: b.BaseURL}, {Key: "token", Value: b.Token}}
}
func (b *echoBlock) Open(context.Context) (providers.Client, error) {
	return &echoClient{base: b.BaseURL, token: b.Token, hc: &http.Client{Timeout: 5 * time.Second}}, nil
}

func echoDescriptor() providers.Descriptor {
	return providers.Descriptor{
		Name:      "echo",
		NewConfig: func() providers.ConfigBlock { return new(echoBlock) },
		SimConfig: func(base string, lane providers.LaneConfig, _ providers.SimClient) providers.ConfigBlock {
			return &echoBlock{BaseURL: base, Token: echoToken, LaneConfig: lane}
		},
		CredentialKeys: "providers.echo.token",
		Manifest: ingest.Manifest{
			Required: []string{ingest.ColEID},
			Fields: func(c *ingest.FieldCheck) {
				if c.Get(ingest.ColDescription) == "refuse" {
					c.Bad(ingest.ColDescription, ingest.CodeBadValue, "echo refuses a description of refuse")
				}
			},
		},
		NewSimulator: func(s providers.SimSettings) providers.Simulator { return newEchoSim(s.Faults) },
		Routes:       []string{"/echo/"},
	}
}

// echoClient provisions an EID with one PUT and looks it up with a GET.
type echoClient struct {
	base, token string
	hc          *http.Client
}

func (c *echoClient) do(ctx context.Context, method, eid string) (int, map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/echo/devices/"+eid, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Echo-Token", c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, nil
}

func (c *echoClient) Submit(ctx context.Context, orders []providers.Order) []providers.Outcome {
	return providers.SubmitEach(ctx, orders, func(ctx context.Context, o providers.Order) providers.Outcome {
		status, _, err := c.do(ctx, http.MethodPut, o.EID)
		switch {
		case err != nil:
			return providers.FailedOutcome(providers.TransportError(err))
		case status == http.StatusUnauthorized:
			return providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeCredentials, Message: "token refused", HTTPStatus: status}}
		case status != http.StatusOK:
			return providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeRejected, Message: "refused", HTTPStatus: status}}
		}
		return providers.Outcome{Status: providers.Succeeded, Result: map[string]string{"eid": o.EID}}
	})
}

func (c *echoClient) Check(_ context.Context, o providers.Order, _ string) providers.Outcome {
	return providers.Outcome{Status: providers.Succeeded, Result: map[string]string{"eid": o.EID}}
}

func (c *echoClient) Lookup(ctx context.Context, o providers.Order) (providers.Subscription, error) {
	status, body, err := c.do(ctx, http.MethodGet, o.EID)
	switch {
	case err != nil:
		return providers.Subscription{}, providers.TransportError(err)
	case status == http.StatusNotFound:
		return providers.Subscription{}, nil
	case status != http.StatusOK:
		return providers.Subscription{}, &providers.Error{Code: providers.CodeServer, Message: "lookup failed", HTTPStatus: status, Retryable: true}
	}
	return providers.Subscription{Found: true, State: body["state"], Active: body["state"] == "active",
		Identifiers: map[string]string{"eid": o.EID}}, nil
}

// echoSim holds a state per EID.
type echoSim struct {
	kit *simkit.Kit
	h   http.Handler
	mu  sync.Mutex
	eid map[string]string // EID -> state
}

func newEchoSim(f simkit.Faults) *echoSim {
	s := &echoSim{eid: map[string]string{}}
	s.kit = simkit.New(f, func(r *http.Request) string {
		if r.Method == http.MethodPut {
			return simkit.OpProvision
		}
		return simkit.OpLookup
	})
	s.h = s.kit.Wrap(http.HandlerFunc(s.serve))
	return s
}

func (s *echoSim) Kit() *simkit.Kit                                 { return s.kit }
func (s *echoSim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

func (s *echoSim) serve(w http.ResponseWriter, r *http.Request) {
	eid, ok := strings.CutPrefix(r.URL.Path, "/echo/devices/")
	if !ok || eid == "" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("X-Echo-Token") != echoToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		s.kit.Provisioned(eid)
		s.eid[eid] = "active"
		simkit.WriteJSON(w, http.StatusOK, map[string]string{"eid": eid, "state": "active"})
	case http.MethodGet:
		st, ok := s.eid[eid]
		if !ok {
			http.NotFound(w, r)
			return
		}
		simkit.WriteJSON(w, http.StatusOK, map[string]string{"eid": eid, "state": st})
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (s *echoSim) Forget(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.eid[id]
	delete(s.eid, id)
	return ok
}

func (s *echoSim) SetState(id, state string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.eid[id]; !ok {
		return false
	}
	s.eid[id] = state
	return true
}

func (s *echoSim) Alter(string, string, string) bool { return false }

func (s *echoSim) Create(id string, _ map[string]string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eid[id] = "active"
	return true, nil
}

// runIn runs simbulk in-process in dir (the registration above is not in
// a `simbulk` subprocess) and returns its exit code and output.
func runIn(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Chdir(wd) }()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestEchoProvider(t *testing.T) {
	providers.Register(echoDescriptor())
	t.Cleanup(func() { providers.Unregister("echo") })

	dir := t.TempDir()
	const rows = 6
	var good, bad strings.Builder
	good.WriteString("provider,eid,description\n")
	bad.WriteString("provider,eid,description\n")
	var eids []string
	for i := 1; i <= rows; i++ {
		eid := samples.NewDevice(iotconnect.Name, i).EID
		eids = append(eids, eid)
		fmt.Fprintf(&good, "echo,%s,device %d\n", eid, i)
	}
	fmt.Fprintf(&bad, "echo,%s,refuse\necho,,fine\n", eids[0])
	for name, body := range map[string]string{"echo.csv": good.String(), "bad.csv": bad.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// validate: the provider's own rules (Required, Fields) apply.
	if code, out, errs := runIn(t, dir, "validate", "echo.csv"); code != 0 {
		t.Fatalf("validate echo.csv: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := runIn(t, dir, "validate", "bad.csv")
	if code != exitRowsFailed || !strings.Contains(out+errs, "echo refuses a description of refuse") || !strings.Contains(out+errs, "echo needs an EID") {
		t.Fatalf("validate bad.csv: exit %d, want %d with both problems\n%s%s", code, exitRowsFailed, out, errs)
	}
	// --provider knows it too.
	if code, out, errs := runIn(t, dir, "validate", "echo.csv", "--provider", "echo"); code != 0 {
		t.Fatalf("validate --provider echo: exit %d\n%s%s", code, out, errs)
	}

	// run --simulate: its simulator is among the in-process ones.
	code, out, errs = runIn(t, dir, "run", "echo.csv", "--simulate", "--db", "sim.db")
	if code != 0 || !regexp.MustCompile(`succeeded +6`).MatchString(out) {
		t.Fatalf("run --simulate: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runIn(t, dir, "run", "echo.csv", "--simulate", "--db", "dry.db", "--dry-run")
	if code != 0 || !regexp.MustCompile(`echo +6 rows in +6 requests`).MatchString(out) {
		t.Fatalf("run --dry-run: exit %d\n%s%s", code, out, errs)
	}

	// run with a config: its block, its credentials from the environment.
	set := simset.New(simkit.Faults{}, 0, simkit.Documented)
	base, stop, err := simset.ServeLoopback(set, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); set.Close() })
	cfg := filepath.Join(dir, "simbulk.yaml")
	t.Setenv("TEST_ECHO_TOKEN", echoToken)
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "providers:\n  echo:\n    base_url: %s\n    token: ${TEST_ECHO_TOKEN}\n    concurrency: 2\n", base), 0o600); err != nil {
		t.Fatal(err)
	}
	// A block without its credential is named, as for any provider.
	missing := filepath.Join(dir, "missing.yaml")
	if err := os.WriteFile(missing, []byte("providers:\n  echo:\n    base_url: http://127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runIn(t, dir, "run", "echo.csv", "--config", missing, "--db", "missing.db"); code == 0 || !strings.Contains(errs, "providers.echo.token") {
		t.Fatalf("run without the token: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runIn(t, dir, "run", "echo.csv", "--config", cfg, "--db", "cfg.db")
	if code != 0 || !regexp.MustCompile(`succeeded +6`).MatchString(out) {
		t.Fatalf("run --config: exit %d\n%s%s", code, out, errs)
	}
	if n := set.Sim("echo").Kit().Stats().ProvisionRequests; n != rows {
		t.Errorf("the echo simulator saw %d provisioning requests, want %d", n, rows)
	}
	m := regexp.MustCompile(`Run: +(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no run id in\n%s", out)
	}
	runID := m[1]

	// report: the rows are in the run's reports.
	code, out, errs = runIn(t, dir, "report", runID, "--db", "cfg.db", "--out", "reports", "--format", "csv")
	if code != 0 {
		t.Fatalf("report: exit %d\n%s%s", code, out, errs)
	}
	succeeded, err := os.ReadFile(filepath.Join(dir, "reports", runID, "succeeded.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, eid := range eids {
		if !bytes.Contains(succeeded, []byte(eid)) {
			t.Errorf("succeeded.csv lacks %s:\n%s", eid, succeeded)
		}
	}

	// reconcile: in sync, then the drift injected through the echo
	// simulator's hooks, and only that.
	reconcile := func() (int, reconcileJSON) {
		t.Helper()
		code, out, errs := runIn(t, dir, "reconcile", "echo.csv", "--config", cfg, "--db", "cfg.db", "--json")
		var res reconcileJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("reconcile --json: exit %d: %v\n%s%s", code, err, out, errs)
		}
		return code, res
	}
	if code, res := reconcile(); code != 0 || res.InSync != rows || len(res.Drift) != 0 {
		t.Fatalf("fresh fleet: exit %d %+v", code, res)
	}
	if ok, err := set.Apply(simset.Drift{Provider: "echo", ID: eids[1], Action: "state", Value: "suspended"}); !ok || err != nil {
		t.Fatalf("drift: %v %v", ok, err)
	}
	if ok, err := set.Apply(simset.Drift{Provider: "echo", ID: eids[2], Action: "delete"}); !ok || err != nil {
		t.Fatalf("drift: %v %v", ok, err)
	}
	code, res := reconcile()
	if code != exitRowsFailed || len(res.Drift) != 2 {
		t.Fatalf("after drift: exit %d, want %d with 2 findings: %+v", code, exitRowsFailed, res)
	}
	for _, d := range res.Drift {
		if d.Provider != "echo" || (d.ID != eids[1] && d.ID != eids[2]) {
			t.Errorf("unexpected finding %+v", d)
		}
	}
}
