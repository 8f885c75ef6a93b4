package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/providers"
	_ "github.com/simbulk/simbulk/providers/all" // the simulators and clients of every shipped provider
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/simset"
	"github.com/simbulk/simbulk/samples"
)

// simulators are the three provider simulators behind one loopback
// address, as `simbulk sim serve` has them, with what the benchmarks
// measure at the door: requests in flight at once, the first provisioning
// request, and the first and last request of all.
type simulators struct {
	*simset.Set
	Asavie *asavie.Simulator // what the single-provider benchmarks count

	inFlight, peak atomic.Int64
	firstReq       atomic.Int64 // unix nanoseconds
	lastReq        atomic.Int64

	firstOnce sync.Once
	first     chan struct{} // closed at the first provisioning request
	firstAt   time.Time     // written before first is closed
}

func newSimulators(f simkit.Faults) *simulators {
	set := simset.New(f, 0, simkit.Documented)
	return &simulators{Set: set, Asavie: set.Sim(asavie.Name).(*asavie.Simulator), first: make(chan struct{})}
}

func (s *simulators) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UnixNano()
	s.firstReq.CompareAndSwap(0, now)
	n := s.inFlight.Add(1)
	defer func() {
		s.inFlight.Add(-1)
		s.lastReq.Store(time.Now().UnixNano())
	}()
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	p := r.URL.Path
	if r.Method == http.MethodPost && (p == "/iot-connect/subscriptions/v1/euiccs" || strings.HasSuffix(p, "/hardware/sims") ||
		p == "/api/m2m/v1/devices/profile/actions/activate") {
		s.firstOnce.Do(func() {
			s.firstAt = time.Now()
			close(s.first)
		})
	}
	s.Set.ServeHTTP(w, r)
}

// span is the time from the first request to the end of the last.
func (s *simulators) span() time.Duration {
	return time.Duration(s.lastReq.Load() - s.firstReq.Load())
}

// serve listens on a loopback port and returns the base URL and a stop.
func (s *simulators) serve() (string, func(), error) {
	base, stop, err := simset.ServeLoopback(s, 5*time.Second)
	if err != nil {
		return "", nil, err
	}
	return base, func() {
		stop()
		s.Close()
	}, nil
}

// laneSettings shape every lane of a benchmark.
type laneSettings struct {
	concurrency int
	rate        float64
	poll        time.Duration
}

// lanes builds a real client and a lane for each provider named, pointed
// at the simulators at base with their demo credentials: the provider's
// registered config block, polled rather than called back, sending up to
// 100 orders per request where a request carries several.
func lanes(base string, ls laneSettings, names ...string) (map[string]*pipeline.Lane, error) {
	out := map[string]*pipeline.Lane{}
	for _, p := range names {
		d, ok := providers.Lookup(p)
		if !ok || d.SimConfig == nil {
			return nil, fmt.Errorf("unknown provider %q", p)
		}
		lane := providers.LaneConfig{Concurrency: ls.concurrency, Rate: ls.rate, MaxAttempts: 8,
			Timeout: 30 * time.Second, MaxRetryAfter: time.Second,
			// The account every sample device of the provider carries.
			Defaults: map[string]string{ingest.ColAccountName: samples.NewDevice(p, 1).AccountName}}
		c, err := d.SimConfig(base, lane, providers.SimClient{BatchSize: 100, PollOnly: true}).Open(context.Background())
		if err != nil {
			return nil, err
		}
		batch := 1
		if bt, ok := c.(providers.Batcher); ok {
			batch = bt.BatchSize()
		}
		out[p] = &pipeline.Lane{Name: p, Client: c, Concurrency: lane.Concurrency, Rate: lane.Rate, BatchSize: batch,
			MaxAttempts: lane.MaxAttempts, PollInterval: ls.poll}
	}
	return out, nil
}

// newAsavieClient is the client both sides of the overhead benchmark use.
func newAsavieClient(base string) (*asavie.Client, error) {
	return asavie.New(asavie.Config{BaseURL: base, ClientID: asavie.SimClientID, ClientSecret: asavie.SimClientSecret,
		Timeout: 30 * time.Second, MaxRetryAfter: time.Second})
}

// fieldsOf are a device's provider fields as a loaded manifest row holds
// them: canonical column names, empty cells left out.
func fieldsOf(d samples.Device) map[string]string {
	rec := d.Record()
	f := map[string]string{}
	for i, col := range samples.Columns {
		if i < 5 || rec[i] == "" { // provider and the four identifiers are not fields
			continue
		}
		f[col] = rec[i]
	}
	return f
}

// cliOf is the CLI as validation hands it to a provider: the sample
// MSISDNs in plain E.164 ("+447700900001") in Asavie's form.
func cliOf(d samples.Device) string {
	if rest, ok := strings.CutPrefix(d.CLI, "+44"); ok && d.Provider == asavie.Name {
		return "(+44)" + rest
	}
	return d.CLI
}

// rowOf is device d as row number row of a run, in state s.
func rowOf(runID string, row int, d samples.Device, s pipeline.State) pipeline.RowRecord {
	r := pipeline.RowRecord{RunID: runID, Row: row, Provider: d.Provider, EID: d.EID, ICCID: d.ICCID, CLI: cliOf(d), IMEI: d.IMEI,
		Fields: fieldsOf(d), Cells: d.Record(), State: s}
	if s == pipeline.Succeeded {
		r.Attempts = 1
		r.Result = map[string]string{"eid": d.EID, "iccid": d.ICCID, "cli": cliOf(d), "state": "ready"}
	}
	return r
}

// addRows stores rows in batches, as a manifest load does.
func addRows(ctx context.Context, cp pipeline.Store, n int, row func(i int) pipeline.RowRecord) error {
	const batch = 2000
	buf := make([]pipeline.RowRecord, 0, batch)
	for i := range n {
		buf = append(buf, row(i))
		if len(buf) == batch || i == n-1 {
			if err := cp.AddRows(ctx, buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}
