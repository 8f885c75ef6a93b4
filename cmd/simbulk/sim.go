package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/simset"
)

// simFlags are the knobs of `sim serve`; a profile sets them all, a flag
// given explicitly overrides one.
type simFlags struct {
	profile    string
	latency    time.Duration
	asyncDelay time.Duration
	rate       float64
	faultRate  float64
	seed       uint64
	forms      string
	faultKinds []string
}

func (f simFlags) faults(cmd *cobra.Command) (simkit.Faults, error) {
	faults, err := simkit.Profile(f.profile)
	if err != nil {
		return faults, err
	}
	changed := func(name string) bool { return cmd != nil && cmd.Flags().Changed(name) }
	if changed("latency") {
		faults.Latency = f.latency
	}
	if changed("rate") {
		faults.Rate = f.rate
	}
	if changed("fault-rate") {
		if f.faultRate < 0 || f.faultRate > 1 {
			return faults, fmt.Errorf("--fault-rate %v: must be between 0 and 1", f.faultRate)
		}
		faults.FaultRate = f.faultRate
	}
	if changed("fault-kinds") {
		kinds, err := parseFaultKinds(f.faultKinds)
		if err != nil {
			return faults, err
		}
		faults.Kinds = kinds
	}
	faults.Seed = f.seed
	return faults, nil
}

// parseFaultKinds reads --fault-kinds: names of simkit faults.
func parseFaultKinds(names []string) ([]simkit.Fault, error) {
	var kinds []simkit.Fault
	var known []string
	for _, k := range simkit.RandomFaults {
		known = append(known, string(k))
	}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("--fault-kinds: unknown fault %q (faults: %s)", n, strings.Join(known, ", "))
		}
		kinds = append(kinds, simkit.Fault(n))
	}
	return kinds, nil
}

func (a *app) simCommand() *cobra.Command {
	sim := &cobra.Command{
		Use:   "sim",
		Short: "Run the built-in provider simulators",
		Args:  unknownCommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError(errors.New("sim needs a command: serve"))
		},
	}
	var f simFlags
	var addr string
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the IoT Connect, Asavie and ThingSpace simulators on one address",
		Long: `Serve simulators of all three provider APIs on one address. They follow the
providers' documents (paths, authentication, bodies, asynchronous completion,
ThingSpace callbacks) and can misbehave on purpose. GET /_sim/stats returns
per-provider counters, including provisioning requests per identifier, so a
duplicate request is visible.

Profiles: ok (no faults), flaky (10% of requests fail in assorted ways;
ThingSpace callbacks are duplicated, delayed or lost at a like rate),
slow (400ms per answer), ratelimited (20 requests/s enforced). Flags
override single knobs of the profile.

Where the providers' public sources disagree on a shape, the simulators
answer in one form and the clients accept both: --forms documented (the
default: ThingSpace's and IoT Connect's reference pages, Asavie's replies
captured from the live API) or --forms alternate (Verizon's generated SDKs,
Asavie's reference sample, IoT Connect answers with every attribute).

The simulators accept these demo credentials:
  iotconnect  client_id demo-iotconnect, client_secret demo-iotconnect-secret (token: POST /oauth2/token)
  asavie      client_id demo-asavie, client_secret demo-asavie-secret
  thingspace  key demo-thingspace-key, secret demo-thingspace-secret, user demo-user / demo-password`,
		Example: `  simbulk sim serve --profile flaky
  simbulk sim serve --addr 127.0.0.1:9000 --latency 20ms --rate 100
  simbulk sim serve --forms alternate
  curl -s localhost:8080/_sim/stats`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			faults, err := f.faults(cmd)
			if err != nil {
				return usageError(err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			forms, err := simkit.ParseForms(f.forms)
			if err != nil {
				return usageError(err)
			}
			set := simset.New(faults, f.asyncDelay, forms)
			defer set.Close()
			srv := &http.Server{Handler: set, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(a.stdout, "simbulk simulators listening on http://%s (profile %s, %s forms)\n", ln.Addr(), profileName(f.profile), forms)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("serve: %w", err)
			case <-cmd.Context().Done():
			}
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("shut down simulators: %w", err)
			}
			return nil
		},
	}
	serve.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	serve.Flags().StringVar(&f.profile, "profile", "ok", "fault profile: ok, flaky, slow, ratelimited")
	serve.Flags().DurationVar(&f.latency, "latency", 0, "latency added to every answer (overrides the profile)")
	serve.Flags().DurationVar(&f.asyncDelay, "async-delay", 500*time.Millisecond, "how long accepted work takes to complete")
	serve.Flags().Float64Var(&f.rate, "rate", 0, "enforced requests per second per provider, 0 = unlimited (overrides the profile)")
	serve.Flags().Float64Var(&f.faultRate, "fault-rate", 0, "probability in [0,1] that a request meets a random fault (overrides the profile)")
	serve.Flags().StringSliceVar(&f.faultKinds, "fault-kinds", nil, "faults --fault-rate draws from, comma-separated: 429, 503, 500, drop-before, drop-after, malformed, hang, hang-after (default all)")
	serve.Flags().Uint64Var(&f.seed, "seed", 1, "seed of the fault model's random choices, for repeatable runs")
	serve.Flags().StringVar(&f.forms, "forms", "documented", "wire forms where the providers' public sources disagree: documented (the providers' reference pages; Asavie's captured live replies) or alternate (the other public form: generated SDKs, reference samples)")
	sim.AddCommand(serve)
	return sim
}

func profileName(p string) string {
	if p == "" {
		return "ok"
	}
	return p
}
