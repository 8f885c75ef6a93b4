package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
)

// chromium returns the headless browser for the end-to-end check. Where
// none is installed the test is skipped on a developer machine but fails
// in CI (CI set), so that CI cannot pass by quietly checking nothing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; CI must install it (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed; install it to run the summary.html end-to-end check")
	return ""
}

// runChromium runs headless Chromium with no network and no profile
// state, and returns its standard output.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND", // nothing may be fetched
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestHTMLInBrowser renders summary.html for a real checkpoint, opens it
// in headless Chromium and checks what a person would see: the headline
// figures agree with summary.json, every chart is there with bars that
// carry the right numbers, and the page is actually painted.
func TestHTMLInBrowser(t *testing.T) {
	bin := chromium(t)
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	drift := &Drift{Checked: 5, InSync: 4, Items: []DriftItem{{Row: 2, Provider: "asavie", ID: "(+44)7700900101", Kind: "state", Expected: "active", Actual: "suspended"}}}
	files, err := WriteWith(context.Background(), f.cp, f.run.ID, f.out, Options{Formats: []string{FormatJSON, FormatHTML}, Drift: drift})
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(files.Dir, SummaryHTML)
	var sum Summary
	b, err := os.ReadFile(filepath.Join(files.Dir, SummaryJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}

	// Self-contained: nothing to fetch, nothing to run.
	src, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "<link", "src=", "href=", "url(", "@import"} {
		if strings.Contains(strings.ToLower(string(src)), bad) {
			t.Errorf("summary.html contains %q: it must open offline", bad)
		}
	}

	dom, err := html.Parse(bytes.NewReader(runChromium(t, bin, "--dump-dom", "file://"+page)))
	if err != nil {
		t.Fatal(err)
	}

	// Headline figures, as the browser has them, against summary.json.
	metrics := map[string]string{}
	walk(dom, func(n *html.Node) {
		if k := attr(n, "data-metric"); k != "" {
			metrics[k] = attr(n, "data-value")
		}
	})
	want := map[string]float64{
		"rows":             float64(sum.Rows),
		"succeeded":        float64(sum.Counts[pipeline.Succeeded]),
		"failed":           float64(sum.Counts[pipeline.Failed]),
		"invalid":          float64(sum.Counts[pipeline.Invalid]),
		"skipped":          float64(sum.Counts[pipeline.Skipped]),
		"unfinished":       float64(sum.Unfinished()),
		"duration_seconds": sum.DurationSeconds,
		"rows_per_second":  sum.Throughput.RowsPerSecond,
		"drift_checked":    5,
		"drift":            1,
	}
	for k, w := range want {
		got, err := strconv.ParseFloat(metrics[k], 64)
		if err != nil || got != w {
			t.Errorf("metric %s shows %q, summary.json says %v", k, metrics[k], w)
		}
	}
	if sum.Rows != 10 || sum.Counts[pipeline.Succeeded] != 2 {
		t.Fatalf("fixture changed: %d rows, %d succeeded", sum.Rows, sum.Counts[pipeline.Succeeded])
	}

	// Charts: present, each with visible bars whose values add up.
	type barData struct {
		series, label string
		value         float64
	}
	charts := map[string][]barData{}
	walk(dom, func(n *html.Node) {
		if n.Type != html.ElementNode || n.Data != "svg" || !strings.HasPrefix(attr(n, "id"), "chart-") {
			return
		}
		id := attr(n, "id")
		if attr(n, "data-chart") != strings.TrimPrefix(id, "chart-") {
			t.Errorf("%s: data-chart %q", id, attr(n, "data-chart"))
		}
		charts[id] = []barData{}
		walk(n, func(r *html.Node) {
			if r.Type != html.ElementNode || r.Data != "rect" || !strings.Contains(attr(r, "class"), "bar") {
				return
			}
			w, _ := strconv.ParseFloat(attr(r, "width"), 64)
			h, _ := strconv.ParseFloat(attr(r, "height"), 64)
			v, _ := strconv.ParseFloat(attr(r, "data-value"), 64)
			if w <= 0 || h <= 0 || v <= 0 {
				t.Errorf("%s: bar %s/%s is empty (w %v, h %v, value %v)", id, attr(r, "data-label"), attr(r, "data-series"), w, h, v)
			}
			charts[id] = append(charts[id], barData{attr(r, "data-series"), attr(r, "data-label"), v})
		})
	})
	for _, id := range []string{"chart-outcomes", "chart-throughput", "chart-latency", "chart-errors"} {
		if len(charts[id]) == 0 {
			t.Errorf("%s: missing or without bars", id)
		}
	}
	outcomes := map[string]float64{}
	for _, b := range charts["chart-outcomes"] {
		outcomes[b.label+"/"+b.series] += b.value
	}
	for p, c := range sum.ByProvider {
		for _, st := range pipeline.States {
			if outcomes[p+"/"+string(st)] != float64(c[st]) {
				t.Errorf("outcomes %s %s: chart %v, summary.json %d", p, st, outcomes[p+"/"+string(st)], c[st])
			}
		}
	}
	var finished float64
	for _, b := range charts["chart-throughput"] {
		finished += b.value
	}
	if want := float64(sum.Counts[pipeline.Succeeded] + sum.Counts[pipeline.Failed]); finished != want {
		t.Errorf("throughput bars add up to %v, want %v rows", finished, want)
	}
	for _, b := range charts["chart-latency"] {
		l := sum.LatencyMs[b.label]
		w := map[string]int64{"p50": l.P50, "p95": l.P95, "p99": l.P99}[b.series]
		if b.value != float64(w) {
			t.Errorf("latency %s %s: chart %v, summary.json %d", b.label, b.series, b.value, w)
		}
	}
	if len(charts["chart-latency"]) != 3*len(sum.LatencyMs) {
		t.Errorf("%d latency bars for %d providers", len(charts["chart-latency"]), len(sum.LatencyMs))
	}
	errs := charts["chart-errors"]
	if len(errs) != len(sum.TopErrors) {
		t.Errorf("%d error bars, %d top errors", len(errs), len(sum.TopErrors))
	}
	for i, e := range sum.TopErrors {
		if i < len(errs) && (errs[i].label != e.Code || errs[i].value != float64(e.Count)) {
			t.Errorf("error bar %d: %s=%v, want %s=%d", i, errs[i].label, errs[i].value, e.Code, e.Count)
		}
	}
	if find(dom, "drift") == nil {
		t.Error("no drift section although drift data was given")
	}

	// What is painted: a screenshot that is not blank and shows the
	// outcome colours.
	shot := filepath.Join(t.TempDir(), "summary.png")
	runChromium(t, bin, "--window-size=1000,2400", "--hide-scrollbars", "--screenshot="+shot, "file://"+page)
	checkScreenshot(t, shot)
}

// TestHTMLWithoutDrift: the drift section appears only with drift data.
func TestHTMLWithoutDrift(t *testing.T) {
	f := newFixture(t, mixedManifest(), ingest.ValidateOptions{}, mixedPlan(), true)
	files := f.write(t, FormatHTML)
	b, err := os.ReadFile(filepath.Join(files.Dir, SummaryHTML))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `id="drift"`) {
		t.Error("drift section without drift data")
	}
	// Values from the manifest and providers are escaped.
	if !regexp.MustCompile(`=cmd\|&#39; /C calc&#39;!A0`).Match(b) {
		t.Error("error message not shown escaped")
	}
}

func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	var ink, green, red int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl := rgb(img, x, y)
			if r < 240 || g < 240 || bl < 240 {
				ink++
			}
			if near(r, g, bl, 0x2d, 0xa4, 0x4e) { // .s-succeeded
				green++
			}
			if near(r, g, bl, 0xcf, 0x22, 0x2e) { // .s-failed, .err
				red++
			}
		}
	}
	total := b.Dx() * b.Dy()
	t.Logf("screenshot %dx%d: %d%% ink, %d succeeded-green and %d failed-red pixels", b.Dx(), b.Dy(), ink*100/total, green, red)
	if ink < total/50 {
		t.Errorf("screenshot is nearly blank (%d of %d pixels drawn)", ink, total)
	}
	if green < 500 || red < 500 {
		t.Errorf("chart colours barely painted: %d green, %d red pixels", green, red)
	}
}

func rgb(img image.Image, x, y int) (int, int, int) {
	r, g, b, _ := img.At(x, y).RGBA()
	return int(r >> 8), int(g >> 8), int(b >> 8)
}

func near(r, g, b, wr, wg, wb int) bool {
	d := func(a, b int) int {
		if a > b {
			return a - b
		}
		return b - a
	}
	return d(r, wr) < 12 && d(g, wg) < 12 && d(b, wb) < 12
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func find(n *html.Node, id string) *html.Node {
	var found *html.Node
	walk(n, func(m *html.Node) {
		if found == nil && m.Type == html.ElementNode && attr(m, "id") == id {
			found = m
		}
	})
	return found
}
