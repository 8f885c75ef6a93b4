package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMetricsListenAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"9464", "127.0.0.1:9464"},
		{":9464", "127.0.0.1:9464"},
		{"0", "127.0.0.1:0"},
		{"0.0.0.0:9464", "0.0.0.0:9464"},
		{"localhost:9464", "localhost:9464"},
		{"[::1]:9464", "[::1]:9464"},
		{"metrics.example", ""},
		{"-1", ""},
	} {
		got, err := metricsListenAddr(tc.in)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("metricsListenAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestConfigMetricsAddr(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "simbulk.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := loadConfig(write("metrics:\n  addr: \":9464\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := metricsAddr("", cfg); got != ":9464" {
		t.Errorf("metrics address from the config = %q", got)
	}
	if got := metricsAddr("127.0.0.1:0", cfg); got != "127.0.0.1:0" {
		t.Errorf("--metrics-addr does not override the config: %q", got)
	}
	if _, err := loadConfig(write("metrics:\n  addr: nowhere\n")); err == nil || !strings.Contains(err.Error(), "metrics.addr") {
		t.Errorf("a bad metrics.addr loads: %v", err)
	}
	if _, err := loadConfig(write("metrics:\n  adr: \":9464\"\n")); err == nil {
		t.Error("a misspelt metrics key loads")
	}
}

// lines is stderr as the test reads it while the command writes it.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
	url chan string
}

var servingMetrics = regexp.MustCompile(`msg="serving metrics" url=(\S+)`)

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := servingMetrics.FindSubmatch(p); m != nil {
		l.url <- string(m[1])
	}
	return l.buf.Write(p)
}

// TestRunServesMetrics runs a slow simulated rollout with --metrics-addr
// on any free port, takes the address from the log line, and scrapes it
// while the run goes on.
func TestRunServesMetrics(t *testing.T) {
	dir := t.TempDir()
	manifest, err := filepath.Abs(filepath.Join("..", "..", "samples", "mixed.csv"))
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lines{url: make(chan string, 1)}
	done := make(chan int)
	go func() {
		done <- run(context.Background(), []string{"run", manifest, "--simulate", "slow", "--db", filepath.Join(dir, "simbulk.db"),
			"--out", filepath.Join(dir, "runs"), "--metrics-addr", "127.0.0.1:0"}, strings.NewReader(""), io.Discard, stderr)
	}()
	var url string
	select {
	case url = <-stderr.url:
	case code := <-done:
		t.Fatalf("exit %d before serving metrics:\n%s", code, stderr.buf.String())
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("metrics served at %s, want localhost", url)
	}
	var seen []string // what the scrapes found, of what the test wants
	want := []string{"simbulk_rows{", "simbulk_run_rows_done{", `simbulk_provider_requests_total{operation="submit"`}
	for {
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr.buf.String())
			}
			for _, w := range want {
				if !slices.Contains(seen, w) {
					t.Errorf("no scrape during the run served %s", w)
				}
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := http.Get(url)
		if err != nil {
			continue // the run ended between the check and the scrape
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if strings.Contains(string(body), w) && !slices.Contains(seen, w) {
				seen = append(seen, w)
			}
		}
	}
}
