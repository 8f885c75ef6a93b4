package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/simkit"
	"github.com/simbulk/simbulk/providers/thingspace"
)

// startSimServe runs `simbulk sim serve` as a separate process on a free
// port and returns its base URL and everything it printed so far.
func startSimServe(t *testing.T, args ...string) (string, *strings.Builder) {
	t.Helper()
	cmd := exec.Command("simbulk", append([]string{"sim", "serve", "--addr", "127.0.0.1:0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sim serve did not exit cleanly on SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("sim serve ignored SIGTERM")
		}
		printed.WriteString(stderr.String())
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("sim serve printed no address: %v\n%s", err, stderr.String())
	}
	printed.WriteString(line)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("no URL in %q", line)
	}
	return strings.Fields(line[i:])[0], &printed
}

func testEID(i int) string {
	p := fmt.Sprintf("890490321234512345%012d", i)
	return p + ingest.EIDCheckDigits(p)
}

func testICCID(i int) string {
	p := fmt.Sprintf("894400000000%07d", i)
	return p + string(ingest.LuhnDigit(p))
}

// TestClientsAgainstSimServe runs each provider client against `simbulk sim
// serve` in another process, through real sockets: provision, learn
// completion, look up, and check the simulator counted one provisioning
// request per identifier.
func TestClientsAgainstSimServe(t *testing.T) {
	base, printed := startSimServe(t, "--async-delay", "50ms")
	iot, err := iotconnect.New(iotconnect.Config{BaseURL: base, TokenURL: base + "/oauth2/token",
		ClientID: iotconnect.SimClientID, ClientSecret: iotconnect.SimClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	asv, err := asavie.New(asavie.Config{BaseURL: base, ClientID: asavie.SimClientID, ClientSecret: asavie.SimClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := thingspace.New(thingspace.Config{BaseURL: base, Key: thingspace.SimKey, Secret: thingspace.SimSecret,
		Username: thingspace.SimUsername, Password: thingspace.SimPassword, AccountName: "0000123456-00001"})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()

	cases := []struct {
		name   string
		client pipeline.Provider
		orders []providers.Order
		batch  bool
	}{
		{"iotconnect", iot, nil, false},
		{"asavie", asv, nil, false},
		{"thingspace", ts, nil, true},
	}
	for i := range 3 {
		cases[0].orders = append(cases[0].orders, providers.Order{Key: fmt.Sprint(i), EID: testEID(i),
			Fields: map[string]string{"cmp": "IOTA_EU", "euicc_agreement_id": "agr-1", "locale_id": "en-GB"}})
		cases[1].orders = append(cases[1].orders, providers.Order{Key: fmt.Sprint(i), CLI: fmt.Sprintf("(+44)770090010%d", i),
			ICCID: testICCID(i), Fields: map[string]string{"account": "acme"}})
		cases[2].orders = append(cases[2].orders, providers.Order{Key: fmt.Sprint(i), EID: testEID(100 + i), ICCID: testICCID(100 + i),
			Fields: map[string]string{"account_name": "0000123456-00001", "service_plan": "IoT"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var outs []providers.Outcome
			if c.batch {
				outs = c.client.Submit(ctx, c.orders)
			} else {
				for _, o := range c.orders {
					outs = append(outs, c.client.Submit(ctx, []providers.Order{o})...)
				}
			}
			for i, out := range outs {
				for out.Status == providers.Accepted && ctx.Err() == nil {
					time.Sleep(20 * time.Millisecond)
					handle := out.Handle
					if out = c.client.Check(ctx, c.orders[i], handle); out.Handle == "" {
						out.Handle = handle
					}
				}
				if out.Status != providers.Succeeded {
					t.Fatalf("order %d: %s %v", i, out.Status, out.Err)
				}
				sub, err := c.client.Lookup(ctx, c.orders[i])
				if err != nil || !sub.Found || !sub.Active {
					t.Errorf("lookup of order %d: %+v %v", i, sub, err)
				}
			}
		})
	}

	stats := simStats(t, base)
	for _, c := range cases {
		st := stats[c.name]
		if st.Provisioned != 3 || st.ProvisionRequests != 3 || len(st.Duplicates) != 0 {
			t.Errorf("%s stats: provisioned %d, requests %d, duplicates %v; want 3, 3, none", c.name, st.Provisioned, st.ProvisionRequests, st.Duplicates)
		}
	}
	if st := stats["thingspace"]; st.Requests[simkit.OpProvision] != 1 {
		t.Errorf("thingspace: %d activate requests for one batch of 3", st.Requests[simkit.OpProvision])
	}
	for _, secret := range []string{iotconnect.SimClientSecret, asavie.SimClientSecret, thingspace.SimSecret, thingspace.SimPassword} {
		if strings.Contains(printed.String(), secret) {
			t.Errorf("sim serve output contains the secret %q", secret)
		}
	}
}
