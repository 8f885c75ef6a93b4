package thingspace_test

import (
	"context"
	"fmt"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/providertest"
	"github.com/simbulk/simbulk/providers/thingspace"
)

const (
	testAccount  = "0000123456-00001"
	cbUser       = "callback-user"
	cbPassword   = "callback-pass-7f3e"
	defaultGrace = 3 * time.Second
)

// eid returns the i-th test EID: 30 digits and a MOD 97-10 check.
func eid(i int) string {
	p := fmt.Sprintf("890490321234512345%012d", i)
	n, _ := new(big.Int).SetString(p+"00", 10)
	r := new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("%s%02d", p, 98-r)
}

// iccid returns the i-th test ICCID: 19 digits with a Luhn check.
func iccid(i int) string {
	s := fmt.Sprintf("890126%012d", i)
	sum, double := 0, true
	for j := len(s) - 1; j >= 0; j-- {
		d := int(s[j] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum, double = sum+d, !double
	}
	return fmt.Sprintf("%s%d", s, (10-sum%10)%10)
}

func order(i int) providers.Order {
	return providers.Order{
		Key: fmt.Sprintf("row-%d", i), EID: eid(i), ICCID: iccid(i),
		Fields: map[string]string{
			"account_name": testAccount, "service_plan": "M2M-Flex", "carrier_name": "Verizon Wireless",
			"first_name": "Ada", "last_name": "Lovelace", "address_line1": "1 Main St",
			"city": "Austin", "state": "TX", "zip": "78701", "country": "USA",
		},
	}
}

// rejected is valid for simbulk but refused by ThingSpace: the state must
// be a two-letter code.
func rejected(i int) providers.Order {
	o := order(1000 + i)
	o.Fields["state"] = "Texas"
	return o
}

// env is a running simulator and client.
type env struct {
	sim    *thingspace.Simulator
	client *thingspace.Client
	pair   providertest.Pair
}

// mode says how a test client learns completion.
type mode struct {
	callback bool
	grace    time.Duration
	tweak    func(*thingspace.Config)
}

func start(t *testing.T, s providertest.Setup, opts thingspace.SimOptions, m mode) *env {
	t.Helper()
	opts.Faults = s.Faults
	opts.AsyncDelay = s.AsyncDelay
	opts.Forms = s.Forms
	sim := thingspace.NewSimulator(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := thingspace.Config{
		BaseURL: srv.URL, Key: thingspace.SimKey, Secret: thingspace.SimSecret,
		Username: thingspace.SimUsername, Password: thingspace.SimPassword,
		AccountName: testAccount, Timeout: s.ClientTimeout, MaxRetryAfter: s.MaxRetryAfter,
		PollInterval: s.PollInterval,
	}
	if s.WrongCredentials {
		cfg.Password = "not-the-password" // key and secret stay right
	}
	if m.callback {
		cfg.Callback = &thingspace.CallbackConfig{Listen: "127.0.0.1:0", Username: cbUser, Password: cbPassword}
		cfg.CallbackGrace = m.grace
		if cfg.CallbackGrace == 0 {
			cfg.CallbackGrace = defaultGrace
		}
	}
	if m.tweak != nil {
		m.tweak(&cfg)
	}
	c, err := thingspace.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	t.Cleanup(sim.Close) // runs first: no delivery races the listener's close
	if err := c.Start(context.Background()); err != nil {
		// With refused credentials Start fails registering the callback;
		// the calls after it must fail the same way without logging in.
		if !s.WrongCredentials || !strings.Contains(err.Error(), providers.CodeCredentials) {
			t.Fatalf("Start: %v", err)
		}
	}
	return &env{sim: sim, client: c, pair: providertest.Pair{
		Client: c, Kit: sim.Kit(), URL: srv.URL, ExpireTokens: sim.ExpireTokens,
	}}
}

func harness(name string, m mode) providertest.Harness {
	return providertest.Harness{
		Name:      name,
		BatchSize: thingspace.DefaultBatchSize,
		Start: func(t *testing.T, s providertest.Setup) providertest.Pair {
			return start(t, s, thingspace.SimOptions{}, m).pair
		},
		Order:      order,
		Rejected:   rejected,
		Identifier: func(o providers.Order) string { return o.EID },
	}
}

// TestConformance runs the shared suite with completion learned by polling
// and by callback, and the ThingSpace cases once.
func TestConformance(t *testing.T) {
	t.Run("poll", func(t *testing.T) {
		providertest.Run(t, harness("thingspace-poll", mode{}))
	})
	t.Run("callback", func(t *testing.T) {
		h := harness("thingspace-callback", mode{callback: true})
		h.Extra = extra
		providertest.Run(t, h)
	})
}
