package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"
)

// headlessChromium is a tab of Debian's Chromium, headless, with no
// network beyond this machine and a fresh profile. Where Chromium is not
// installed the browser tests skip on a workstation and fail under CI, so
// CI cannot pass by checking nothing.
func headlessChromium(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed; CI must install it (apt-get install -y chromium)")
		}
		t.Skip("chromium is not installed; install it to run the console's browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"), // nothing leaves the machine
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// screenshot saves the page as PNG into $SIMBULK_SCREENSHOTS (the README's
// pictures come from there), or into the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("SIMBULK_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text("body"))
		t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// The console as a logistics team uses it, in a real browser: log in,
// upload, read the problems, start a rollout and watch it finish without
// reloading, download the report; and the safety around it.
func TestConsoleInBrowser(t *testing.T) {
	ctx := headlessChromium(t)
	h := newConsoleHarness(t)

	t.Run("wrong password", func(t *testing.T) {
		do(t, ctx, "log in with a wrong password",
			chromedp.Navigate(h.url+"/"),
			chromedp.WaitVisible("#login-form"),
			chromedp.SendKeys("#user", testUser),
			chromedp.SendKeys("#password", "not the password"),
			chromedp.Click("#login"),
			chromedp.WaitVisible("#login-error"))
		if msg := value(t, ctx, "error", chromedp.Text("#login-error")); !strings.Contains(msg, "Wrong user name or password") {
			t.Errorf("login error %q", msg)
		}
	})

	do(t, ctx, "log in",
		chromedp.Navigate(h.url+"/login"),
		chromedp.WaitVisible("#login-form"),
		chromedp.SendKeys("#user", testUser),
		chromedp.SendKeys("#password", testPassword),
		chromedp.Click("#login"),
		chromedp.WaitVisible("#upload-form"))

	var runID string
	t.Run("upload mixed.csv and watch it provision", func(t *testing.T) {
		mixed, _ := filepath.Abs(filepath.Join(samplesDir, "mixed.csv"))
		do(t, ctx, "upload", chromedp.SetUploadFiles("#manifest", []string{mixed}))
		screenshot(t, ctx, "console-upload")
		do(t, ctx, "check", chromedp.Click("#upload"), chromedp.WaitVisible("#upload-counts"))
		if v := value(t, ctx, "valid", chromedp.Text("#valid")); v != "30" {
			t.Fatalf("valid rows %q, want 30", v)
		}
		do(t, ctx, "confirm", chromedp.Click("#start"), chromedp.WaitVisible("#plan"))
		plan := value(t, ctx, "plan", chromedp.Text("#plan"))
		for _, p := range []string{"iotconnect", "asavie", "thingspace"} {
			if !strings.Contains(plan, p) {
				t.Errorf("the plan does not name %s:\n%s", p, plan)
			}
		}
		do(t, ctx, "start", chromedp.Click("#confirm"), chromedp.WaitVisible("#run"))
		runID = value(t, ctx, "run id", chromedp.AttributeValue("#run", "data-run")).Value
		// A mark on the window: a reload would lose it, so finding it at
		// the end proves the page updated itself from the event stream.
		_, _ = chromedp.Run(ctx, chromedp.Evaluate[bool]("window.simbulkMark = true"))
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("succeeded").textContent === "30" &&
			document.getElementById("state").textContent === "completed" &&
			document.querySelector('#reports a[href$="report.xlsx"]') !== null`, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			t.Fatalf("the run page never showed 30 of 30 succeeded: %v\n%s", err, value(t, ctx, "page", chromedp.Text("body")))
		}
		if mark := value(t, ctx, "mark", chromedp.Evaluate[bool]("window.simbulkMark === true")); !mark {
			t.Error("the run page reloaded; it must update from server-sent events")
		}
		screenshot(t, ctx, "console-run")

		dir := t.TempDir()
		if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: new(true)}); err != nil {
			t.Fatal(err)
		}
		downloads := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
		do(t, ctx, "download report.xlsx", chromedp.Click(`#reports a[href$="report.xlsx"]`))
		for ev, err := range downloads {
			if err != nil {
				t.Fatal(err)
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				break
			}
			if ev.State == browser.DownloadProgressStateCanceled {
				t.Fatal("the download was cancelled")
			}
		}
		wb, err := excelize.OpenFile(filepath.Join(dir, runID+"-report.xlsx"))
		if err != nil {
			t.Fatal(err)
		}
		defer wb.Close()
		rows, err := wb.GetRows("Succeeded")
		if err != nil || len(rows) != 31 {
			t.Errorf("downloaded report.xlsx: Succeeded has %d rows (%v), want header + 30", len(rows), err)
		}
	})

	t.Run("an action without the CSRF token is refused", func(t *testing.T) {
		if runID == "" {
			t.Skip("no run")
		}
		status := value(t, ctx, "forged stop", chromedp.Evaluate[int](
			`fetch("/runs/`+runID+`/reconcile", {method: "POST", credentials: "same-origin",
				headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "x=1"}).then(r => r.status)`,
			chromedp.EvalAwaitPromise))
		if status != 403 {
			t.Errorf("POST without the token: %d, want 403", status)
		}
		var recs []any
		h.apiGet(t, "/api/runs/"+runID+"/reconciliations", &recs)
		if len(recs) != 0 {
			t.Errorf("the refused reconcile ran: %d reconciliations", len(recs))
		}
	})

	t.Run("broken.csv shows each broken row's code", func(t *testing.T) {
		broken, _ := filepath.Abs(filepath.Join(samplesDir, "broken.csv"))
		do(t, ctx, "upload broken.csv",
			chromedp.Navigate(h.url+"/"),
			chromedp.WaitVisible("#upload-form"),
			chromedp.SetUploadFiles("#manifest", []string{broken}),
			chromedp.Click("#upload"),
			chromedp.WaitVisible("#problems"))
		screenshot(t, ctx, "console-problems")
		cells := value(t, ctx, "table", chromedp.Evaluate[[][]string](
			`[...document.querySelectorAll("#problems tbody tr")].map(tr => [...tr.cells].map(td => td.textContent))`))
		shown := map[string]bool{}
		for _, c := range cells {
			shown[c[0]+" "+strings.TrimSuffix(c[2], " (warning)")] = true
		}
		_, want := validateJSON(t, broken)
		for _, p := range want.Problems {
			if !shown[strconv.Itoa(p.Row)+" "+p.Code] {
				t.Errorf("row %d's %s is not in the table", p.Row, p.Code)
			}
		}
		if len(cells) != len(want.Problems) {
			t.Errorf("table has %d problems, validate %d", len(cells), len(want.Problems))
		}
	})

	t.Run("a <script> cell is shown as text", func(t *testing.T) {
		evil := filepath.Join(t.TempDir(), "evil.csv")
		cell := `<script>window.simbulkXSS=1</script><img src=x onerror="window.simbulkXSS=2">`
		if err := os.WriteFile(evil, []byte("provider,eid,account_name\nthingspace,\""+strings.ReplaceAll(cell, `"`, `""`)+"\",acct\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		do(t, ctx, "upload evil.csv",
			chromedp.Navigate(h.url+"/"),
			chromedp.WaitVisible("#upload-form"),
			chromedp.SetUploadFiles("#manifest", []string{evil}),
			chromedp.Click("#upload"),
			chromedp.WaitVisible("#problems"))
		text := value(t, ctx, "table", chromedp.Text("#problems"))
		if !strings.Contains(text, cell) {
			t.Errorf("the cell is not shown as text:\n%s", text)
		}
		if ran := value(t, ctx, "xss", chromedp.Evaluate[bool]("window.simbulkXSS !== undefined")); ran {
			t.Error("the manifest cell ran as script")
		}
	})

	t.Run("runs list", func(t *testing.T) {
		do(t, ctx, "runs", chromedp.Navigate(h.url+"/"), chromedp.WaitVisible("#runs"))
		list := value(t, ctx, "runs", chromedp.Text("#runs"))
		if !strings.Contains(list, runID) || !strings.Contains(list, testUser) {
			t.Errorf("the runs list does not show run %s started by %s:\n%s", runID, testUser, list)
		}
		screenshot(t, ctx, "console-runs")
	})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the browser test ran out of time")
	}
}
