package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/simbulk/simbulk/cmd/simbulk/console"
	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
)

const (
	testUser     = "logistics"
	testPassword = "correct horse battery"
)

// consoleHarness is a console over a real checkpoint file, with lanes to
// the in-process simulators, served over real HTTP.
type consoleHarness struct {
	url              string
	db, out, data    string
	cfg              *Config
	srv              *console.Server
	stderr           *syncBuffer
	shutdownOnce     func()
	consoleAPIClient *http.Client
}

// syncBuffer is a log sink tests read while the console writes to it.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

type harnessOption func(*console.Options, *serveOptions)

func newConsoleHarness(t *testing.T, opts ...harnessOption) *consoleHarness {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	o := serveOptions{data: filepath.Join(dir, "console")}
	o.db, o.out, o.simulate = filepath.Join(dir, "simbulk.db"), filepath.Join(dir, "runs"), "ok"
	copts := console.Options{Users: []console.User{{Name: testUser, PasswordHash: string(hash)}}}
	for _, opt := range opts {
		opt(&copts, &o)
	}
	cfg, stopSims, err := simulatedConfig(o.simulate, 50*time.Millisecond, "documented")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopSims)
	logs := newSyncBuffer()
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, logFormat: "text"}
	srv, closeConsole, err := a.consoleServer(context.Background(), cfg, o, copts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	h := &consoleHarness{url: hs.URL, db: o.db, out: o.out, data: o.data, cfg: cfg, srv: srv, stderr: logs}
	stopped := false
	h.shutdownOnce = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("console shutdown: %v", err)
		}
		hs.Close()
		closeConsole()
	}
	t.Cleanup(h.shutdownOnce)
	return h
}

// session is a browser-like client: cookies, and the CSRF token of the
// last page it read.
type session struct {
	t    *testing.T
	h    *consoleHarness
	c    *http.Client
	csrf string
}

func (h *consoleHarness) newSession(t *testing.T) *session {
	jar, _ := cookiejar.New(nil)
	return &session{t: t, h: h, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfInPage = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get reads a page and remembers its CSRF token.
func (s *session) get(path string) (int, string) {
	s.t.Helper()
	resp, err := s.c.Get(s.h.url + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfInPage.FindSubmatch(b); m != nil {
		s.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

func (s *session) post(path string, form url.Values) (*http.Response, string) {
	s.t.Helper()
	resp, err := s.c.PostForm(s.h.url+path, form)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (s *session) login(user, password string) *http.Response {
	s.t.Helper()
	s.get("/login")
	resp, _ := s.post("/login", url.Values{"csrf": {s.csrf}, "user": {user}, "password": {password}, "next": {"/"}})
	return resp
}

func (s *session) mustLogin() {
	s.t.Helper()
	if resp := s.login(testUser, testPassword); resp.StatusCode != http.StatusSeeOther {
		s.t.Fatalf("login: %s", resp.Status)
	}
	s.get("/") // the session's CSRF token
}

// upload posts a manifest as the upload form does and returns the
// answer; the upload's page when it was accepted.
func (s *session) upload(name string, content []byte, fields map[string]string, withToken bool) (*http.Response, string) {
	s.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("manifest", name)
	_, _ = fw.Write(content)
	mw.Close()
	target := s.h.url + "/uploads"
	if withToken {
		target += "?csrf=" + url.QueryEscape(s.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, target, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := s.c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// startMixed uploads samples/mixed.csv and starts it, as a person does
// through the pages, and returns the run's id.
func (s *session) startMixed() string {
	s.t.Helper()
	resp, _ := s.upload("mixed.csv", readSample(s.t, "mixed.csv"), nil, true)
	resp, _ = s.post(resp.Header.Get("Location")+"/start", url.Values{"csrf": {s.csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		s.t.Fatalf("start: %s", resp.Status)
	}
	return strings.TrimPrefix(resp.Header.Get("Location"), "/runs/")
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apiGet and apiPost call the API with HTTP Basic credentials, as a
// script would, decode its answer into v and return the status.
func (h *consoleHarness) apiGet(t *testing.T, path string, v any) int {
	return h.apiCall(t, http.MethodGet, path, v)
}

func (h *consoleHarness) apiPost(t *testing.T, path string, v any) int {
	return h.apiCall(t, http.MethodPost, path, v)
}

func (h *consoleHarness) apiCall(t *testing.T, method, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(method, h.url+path, nil)
	req.SetBasicAuth(testUser, testPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, resp.Status, err)
		}
	}
	return resp.StatusCode
}

// runView is what /api/runs/{id} and its event stream answer.
type runView struct {
	statusJSON
	StartedBy  string                     `json:"started_by"`
	ByProvider map[string]pipeline.Counts `json:"by_provider"`
	Done       int                        `json:"done"`
	Total      int                        `json:"total"`
	Worker     string                     `json:"worker"`
	Can        map[string]bool            `json:"can"`
	Reports    []string                   `json:"reports"`
	Actions    []console.Action           `json:"actions"`
}

// waitForRun follows the run's event stream until done says so; it is
// the same stream the run page follows, so no test sleeps.
func (h *consoleHarness) waitForRun(t *testing.T, id string, done func(runView) bool) runView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/api/runs/"+id+"/events", nil)
	req.SetBasicAuth(testUser, testPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events: %s, content type %q", resp.Status, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var last runView
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		last = runView{}
		if err := json.Unmarshal([]byte(data), &last); err != nil {
			t.Fatal(err)
		}
		if done(last) {
			return last
		}
	}
	t.Fatalf("the event stream ended before the run got there (%v); last %+v", sc.Err(), last)
	return last
}

func finished(v runView) bool {
	return v.State != pipeline.RunRunning && v.Worker == "" && len(v.Reports) > 0
}

func TestConsoleLogin(t *testing.T) {
	h := newConsoleHarness(t)
	s := h.newSession(t)
	if resp, _ := s.post("/logout", nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("POST /logout logged out: %s to %s, want the login page", resp.Status, resp.Header.Get("Location"))
	}
	if code, _ := s.get("/"); code != http.StatusSeeOther {
		t.Errorf("GET / logged out: %d, want a redirect to the login page", code)
	}
	resp := s.login(testUser, "wrong password")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %s", resp.Status)
	}
	// A login form posted without its token (another site's form) is
	// refused before the password is even checked.
	if resp, _ := s.post("/login", url.Values{"user": {testUser}, "password": {testPassword}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without the form's token: %s", resp.Status)
	}
	// Four more failures use up the address's budget of five; then even
	// the right password waits.
	for range 4 {
		s.login(testUser, "still wrong")
	}
	if resp := s.login(testUser, testPassword); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("sixth login: %s, Retry-After %q; want 429 after five failures", resp.Status, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(h.stderr.String(), "login refused") || strings.Contains(h.stderr.String(), "wrong password") {
		t.Errorf("the log must record refused logins, never the password tried:\n%s", h.stderr)
	}

	h2 := newConsoleHarness(t)
	s2 := h2.newSession(t)
	resp = s2.login(testUser, testPassword)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right password: %s", resp.Status)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "simbulk_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure without TLS", cookie)
	}
	if code, body := s2.get("/"); code != http.StatusOK || !strings.Contains(body, testUser) {
		t.Errorf("GET / logged in: %d", code)
	}
}

func TestConsoleRefusesRequestsWithoutCSRFToken(t *testing.T) {
	h := newConsoleHarness(t)
	s := h.newSession(t)
	s.mustLogin()
	resp, _ := s.upload("mixed.csv", readSample(t, "mixed.csv"), nil, false)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("upload without the token: %s", resp.Status)
	}
	if entries, _ := os.ReadDir(filepath.Join(h.data, "uploads")); len(entries) != 0 {
		t.Errorf("a refused upload left %d entries", len(entries))
	}
	resp, _ = s.upload("mixed.csv", readSample(t, "mixed.csv"), nil, true)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload with the token: %s", resp.Status)
	}
	upID := strings.TrimPrefix(resp.Header.Get("Location"), "/uploads/")
	for _, tc := range []struct{ path, token string }{
		{"/uploads/" + upID + "/start", ""},
		{"/uploads/" + upID + "/start", "forged"},
		{"/logout", ""},
	} {
		resp, body := s.post(tc.path, url.Values{"csrf": {tc.token}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("POST %s with token %q: %s", tc.path, tc.token, resp.Status)
		}
	}
	var runs []statusJSON
	h.apiGet(t, "/api/runs", &runs)
	if len(runs) != 0 {
		t.Errorf("a refused start started %d runs", len(runs))
	}
}

func TestConsoleValidationMatchesValidate(t *testing.T) {
	h := newConsoleHarness(t)
	s := h.newSession(t)
	s.mustLogin()
	_, want := validateJSON(t, filepath.Join(samplesDir, "broken.csv"))
	resp, _ := s.upload("broken.csv", readSample(t, "broken.csv"), nil, true)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload: %s", resp.Status)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/uploads/")
	var up console.Upload
	h.apiGet(t, "/api/uploads/"+id, &up)
	if up.Rows != want.Rows || up.Valid != want.Valid || up.Invalid != want.Invalid || up.Problems != len(want.Problems) {
		t.Fatalf("console counted %d rows %d valid %d invalid %d problems; validate %d %d %d %d",
			up.Rows, up.Valid, up.Invalid, up.Problems, want.Rows, want.Valid, want.Invalid, len(want.Problems))
	}
	var page struct {
		Total    int              `json:"total"`
		Problems []ingest.Problem `json:"problems"`
	}
	h.apiGet(t, "/api/uploads/"+id+"/problems", &page)
	if len(page.Problems) != len(want.Problems) {
		t.Fatalf("problems page: %d, want %d", len(page.Problems), len(want.Problems))
	}
	seen := map[ingest.Problem]bool{}
	for _, p := range page.Problems {
		seen[p] = true
	}
	for _, p := range want.Problems {
		if !seen[p] {
			t.Errorf("validate's problem %+v is not in the console's list", p)
		}
	}
	code, body := s.get("/uploads/" + id)
	if code != http.StatusOK {
		t.Fatalf("validation page: %d", code)
	}
	for _, p := range want.Problems {
		if !strings.Contains(body, ">"+p.Code+"<") {
			t.Errorf("the validation page does not show code %s", p.Code)
		}
	}
	if !strings.Contains(body, `id="excel-damage"`) || !strings.Contains(body, "Text") {
		t.Error("the page does not explain the Excel damage it found")
	}

	// The invalid rows come back as they were, under the header, ready
	// to fix and upload again; the problems download has every problem.
	rows := downloadCSV(t, s, "/uploads/"+id+"/invalid-rows.csv")
	if len(rows)-1 != want.Invalid {
		t.Errorf("invalid rows download: %d rows, want %d", len(rows)-1, want.Invalid)
	}
	probs := downloadCSV(t, s, "/uploads/"+id+"/problems.csv")
	if len(probs)-1 != len(want.Problems) || strings.Join(probs[0], ",") != "row,column,code,severity,value,message" {
		t.Errorf("problems download: %d lines, header %v", len(probs), probs[0])
	}
	// The filter narrows the table and its download alike.
	filtered := downloadCSV(t, s, "/uploads/"+id+"/problems.csv?code=excel_damage")
	if len(filtered)-1 != up.ByCode["excel_damage"] || up.ByCode["excel_damage"] == 0 {
		t.Errorf("excel_damage filter: %d lines, %d counted", len(filtered)-1, up.ByCode["excel_damage"])
	}
}

func downloadCSV(t *testing.T, s *session, path string) [][]string {
	t.Helper()
	code, body := s.get(path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d", path, code)
	}
	r := csv.NewReader(strings.NewReader(body))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return rows
}

// A manifest with more problems than a page: pages split them in file
// order without loss, and filters count exactly.
func TestConsoleProblemPages(t *testing.T) {
	h := newConsoleHarness(t)
	s := h.newSession(t)
	s.mustLogin()
	var b strings.Builder
	b.WriteString("provider,eid,account_name\n")
	for i := range 120 {
		eid := testEID(i)
		if i%2 == 0 {
			eid = eid[:31] + "x" // bad format
		}
		fmt.Fprintf(&b, "thingspace,%s,acct\n", eid)
	}
	resp, _ := s.upload("many.csv", []byte(b.String()), nil, true)
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/uploads/")
	var rows []int
	for page := 1; ; page++ {
		var p struct {
			Pages    int              `json:"pages"`
			Total    int              `json:"total"`
			Problems []ingest.Problem `json:"problems"`
		}
		h.apiGet(t, fmt.Sprintf("/api/uploads/%s/problems?code=bad_format&column=eid&page=%d", id, page), &p)
		if p.Total != 60 || p.Pages != 2 {
			t.Fatalf("filtered total %d in %d pages, want 60 in 2", p.Total, p.Pages)
		}
		for _, pr := range p.Problems {
			rows = append(rows, pr.Row)
		}
		if page == p.Pages {
			break
		}
	}
	if len(rows) != 60 || rows[0] != 2 || rows[59] != 120 {
		t.Errorf("paged rows %v", rows)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i] != rows[i-1]+2 {
			t.Fatalf("pages skipped or repeated a problem at %d: %v", i, rows)
		}
	}
}

func TestConsoleUploadLimit(t *testing.T) {
	h := newConsoleHarness(t, func(o *console.Options, _ *serveOptions) { o.UploadLimit = 2048 })
	s := h.newSession(t)
	s.mustLogin()
	resp, body := s.upload("mixed.csv", readSample(t, "mixed.csv"), nil, true)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "upload limit") {
		t.Errorf("upload past the limit: %s\n%s", resp.Status, body)
	}
	if entries, _ := os.ReadDir(filepath.Join(h.data, "uploads")); len(entries) != 0 {
		t.Errorf("a refused upload left %d entries behind", len(entries))
	}
}

// Cells are text everywhere: a manifest cell holding markup is shown
// escaped, never as markup.
func TestConsoleEscapesCells(t *testing.T) {
	h := newConsoleHarness(t)
	s := h.newSession(t)
	s.mustLogin()
	manifest := "provider,eid,account_name\nthingspace,<script>alert(1)</script>,acct\n"
	resp, _ := s.upload("evil.csv", []byte(manifest), nil, true)
	_, body := s.get(resp.Header.Get("Location"))
	if strings.Contains(body, "<script>alert") {
		t.Fatal("the validation page carries the cell as markup")
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the validation page does not show the cell as text")
	}
}

func TestConsoleRolloutEndToEnd(t *testing.T) {
	h := newConsoleHarness(t)
	s := h.newSession(t)
	s.mustLogin()
	resp, _ := s.upload("mixed.csv", readSample(t, "mixed.csv"), nil, true)
	upPage := resp.Header.Get("Location")
	id := strings.TrimPrefix(upPage, "/uploads/")
	code, body := s.get(upPage + "/confirm")
	if code != http.StatusOK || !regexp.MustCompile(`(?s)asavie</td><td class="n">10</td>`).MatchString(body) {
		t.Fatalf("confirm page %d does not plan asavie's 10 rows:\n%s", code, body)
	}
	resp, _ = s.post(upPage+"/start", url.Values{"csrf": {s.csrf}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/runs/") {
		t.Fatalf("start: %s to %s", resp.Status, resp.Header.Get("Location"))
	}
	runID := strings.TrimPrefix(resp.Header.Get("Location"), "/runs/")
	v := h.waitForRun(t, runID, finished)
	if v.State != pipeline.RunCompleted || v.Counts[pipeline.Succeeded] != 30 || v.Done != 30 || v.Total != 30 {
		t.Fatalf("run ended %s with %v", v.State, v.Counts)
	}
	for _, p := range []string{"iotconnect", "asavie", "thingspace"} {
		if v.ByProvider[p][pipeline.Succeeded] != 10 {
			t.Errorf("%s succeeded %d, want 10", p, v.ByProvider[p][pipeline.Succeeded])
		}
	}
	if v.StartedBy != testUser || len(v.Actions) != 1 || v.Actions[0].Action != "start" || v.Actions[0].User != testUser || v.Actions[0].Upload != id {
		t.Errorf("started by %q, actions %+v", v.StartedBy, v.Actions)
	}

	// The XLSX report downloads and reads back with every row.
	dl, err := s.c.Get(h.url + "/runs/" + runID + "/reports/report.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Body.Close()
	if !strings.Contains(dl.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("report download: %s, disposition %q", dl.Status, dl.Header.Get("Content-Disposition"))
	}
	wb, err := excelize.OpenReader(dl.Body)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := wb.GetRows("Succeeded")
	if err != nil || len(rows) != 31 {
		t.Errorf("report.xlsx Succeeded sheet: %d rows (%v), want header + 30", len(rows), err)
	}
	if code, _ := s.get("/runs/" + runID + "/reports/..%2Fsimbulk.db"); code != http.StatusNotFound {
		t.Errorf("a report name outside the list: %d", code)
	}

	// /metrics tells the same story: rows by provider and state, and the
	// provider requests the console's rollout made.
	mresp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exposition, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, p := range []string{"iotconnect", "asavie", "thingspace"} {
		series := fmt.Sprintf(`simbulk_rows{provider=%q,run=%q,state="succeeded"} 10`, p, runID)
		if !strings.Contains(string(exposition), series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if !regexp.MustCompile(`simbulk_provider_requests_total\{operation="submit",provider="asavie",status_class="2xx"\} [1-9]`).Match(exposition) {
		t.Errorf("/metrics counts no asavie submits:\n%s", exposition)
	}

	// The runs list (page and API) shows it with who started it.
	var list []struct {
		statusJSON
		StartedBy string `json:"started_by"`
	}
	h.apiGet(t, "/api/runs", &list)
	if len(list) != 1 || list[0].RunID != runID || list[0].StartedBy != testUser || list[0].Counts[pipeline.Succeeded] != 30 {
		t.Errorf("runs %+v", list)
	}
	if _, page := s.get("/"); !strings.Contains(page, runID) || !strings.Contains(page, "mixed.csv") {
		t.Error("the runs page does not list the run")
	}

	// Reconcile from the console: the history shows one reconciliation,
	// all in sync.
	resp, _ = s.post("/runs/"+runID+"/reconcile", url.Values{"csrf": {s.csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reconcile: %s", resp.Status)
	}
	h.waitForRun(t, runID, func(v runView) bool { return v.Worker == "" && len(v.Actions) == 2 })
	var recs []pipeline.Reconciliation
	h.apiGet(t, "/api/runs/"+runID+"/reconciliations", &recs)
	if len(recs) != 1 || recs[0].State != pipeline.RunCompleted || recs[0].Checked != 30 || recs[0].InSync != 30 {
		t.Errorf("reconciliations %+v", recs)
	}
	if _, page := s.get("/runs/" + runID + "/reconciliations"); !strings.Contains(page, `id="no-drift"`) {
		t.Error("the reconciliation page does not say there is no drift")
	}
}

// Provider secrets never reach a page or an API answer: the console sees
// lanes through the rollout service, never the config's credentials.
func TestConsoleNeverShowsSecrets(t *testing.T) {
	h := newConsoleHarness(t)
	s := h.newSession(t)
	s.mustLogin()
	runID := s.startMixed()
	h.waitForRun(t, runID, finished)
	var secrets []string
	for _, b := range h.cfg.Providers {
		for _, c := range b.Credentials() {
			if len(c.Value) >= 6 {
				secrets = append(secrets, c.Value)
			}
		}
	}
	if len(secrets) == 0 {
		t.Fatal("the simulated config has no credentials to look for")
	}
	var seen strings.Builder
	for _, p := range []string{"/", "/runs/" + runID, "/runs/" + runID + "/reconciliations", "/api/runs", "/api/runs/" + runID} {
		_, body := s.get(p)
		seen.WriteString(body)
	}
	seen.WriteString(h.stderr.String())
	for _, sec := range secrets {
		if strings.Contains(seen.String(), sec) {
			t.Errorf("a provider credential appears in a page, an answer or the log")
		}
	}
}

// The checkpoint lock decides who drives: while another process holds
// it, the console refuses to start, and says why.
func TestConsoleNeverDrivesARunTheCLIHolds(t *testing.T) {
	h := newConsoleHarness(t)
	s := h.newSession(t)
	s.mustLogin()
	unlock, err := lockFile(h.db, 0)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := s.upload("mixed.csv", readSample(t, "mixed.csv"), nil, true)
	resp, body := s.post(resp.Header.Get("Location")+"/start", url.Values{"csrf": {s.csrf}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "another simbulk") {
		t.Errorf("start while the CLI holds the checkpoint: %s", resp.Status)
	}
	unlock()

	// A run the command line made on the same checkpoint shows up, as
	// started by the command line.
	dir := t.TempDir()
	manifest := filepath.Join(dir, "mixed.csv")
	if err := os.WriteFile(manifest, readSample(t, "mixed.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runIn(t, dir, "run", manifest, "--simulate", "--db", h.db, "--out", h.out); code != exitOK {
		t.Fatalf("CLI run: exit %d\n%s", code, stderr)
	}
	var list []struct {
		statusJSON
		StartedBy string `json:"started_by"`
	}
	h.apiGet(t, "/api/runs", &list)
	if len(list) != 1 || list[0].StartedBy != "command line" || list[0].Counts[pipeline.Succeeded] != 30 {
		t.Errorf("runs %+v", list)
	}
	var out map[string]string
	if code := h.apiPost(t, "/api/runs/"+list[0].RunID+"/stop", &out); code != http.StatusBadRequest || !strings.Contains(out["error"], "not running") {
		t.Errorf("stop of a run the console does not drive: %d %v", code, out)
	}
}

// slowSimulators answer in 400 ms, one request at a time per provider, so
// a 30-row run lasts seconds: long enough to stop it part way.
func slowSimulators(_ *console.Options, o *serveOptions) { o.simulate, o.concurrency = "slow", 1 }

// Stop is graceful and resumable; Resume finishes the run, each with the
// command line's semantics; both are recorded with their user.
func TestConsoleStopAndResume(t *testing.T) {
	h := newConsoleHarness(t, slowSimulators)
	s := h.newSession(t)
	s.mustLogin()
	runID := s.startMixed()
	h.waitForRun(t, runID, func(v runView) bool { return v.Done > 0 })
	var out map[string]string
	if code := h.apiPost(t, "/api/runs/"+runID+"/stop", &out); code != http.StatusAccepted {
		t.Fatalf("stop: %d %v", code, out)
	}
	v := h.waitForRun(t, runID, func(v runView) bool { return v.Worker == "" })
	if v.State != pipeline.RunInterrupted || v.Done >= v.Total || !v.Can["resume"] {
		t.Fatalf("after stop: %s, %d of %d done, can %v", v.State, v.Done, v.Total, v.Can)
	}
	if code := h.apiPost(t, "/api/runs/"+runID+"/resume", &out); code != http.StatusAccepted {
		t.Fatalf("resume: %d %v", code, out)
	}
	v = h.waitForRun(t, runID, finished)
	if v.State != pipeline.RunCompleted || v.Counts[pipeline.Succeeded] != v.Total {
		t.Fatalf("after resume: %s %v", v.State, v.Counts)
	}
	var acts []string
	for _, a := range v.Actions {
		acts = append(acts, a.User+":"+a.Action)
	}
	if strings.Join(acts, " ") != testUser+":resume "+testUser+":stop "+testUser+":start" {
		t.Errorf("actions, newest first: %v", acts)
	}
}

// SIGTERM to the server stops a running rollout gracefully: it is left
// interrupted and resumable, with nothing in flight lost.
func TestConsoleShutdownLeavesRunResumable(t *testing.T) {
	h := newConsoleHarness(t, slowSimulators)
	s := h.newSession(t)
	s.mustLogin()
	runID := s.startMixed()
	h.waitForRun(t, runID, func(v runView) bool { return v.Done > 0 })
	h.shutdownOnce()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"status", runID, "--json", "--db", h.db}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("status: %d %s", code, &stderr)
	}
	var st statusJSON
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.State != pipeline.RunInterrupted || st.Counts[pipeline.InFlight] != 0 {
		t.Errorf("after shutdown: %s %v; want interrupted, nothing in flight", st.State, st.Counts)
	}
}

func TestConsoleTrustsProxyHeaderOnlyFromProxies(t *testing.T) {
	for _, tc := range []struct {
		trusted string
		want    int
	}{{"127.0.0.1/32", http.StatusOK}, {"10.0.0.0/8", http.StatusSeeOther}} {
		h := newConsoleHarness(t, func(o *console.Options, _ *serveOptions) {
			o.Proxy = console.ProxyAuth{Header: "X-Forwarded-User", Trusted: []netip.Prefix{netip.MustParsePrefix(tc.trusted)}}
		})
		req, _ := http.NewRequest(http.MethodGet, h.url+"/", nil)
		req.Header.Set("X-Forwarded-User", "proxy-alice")
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("header from 127.0.0.1 with proxies %s: %s, want %d", tc.trusted, resp.Status, tc.want)
		}
		if tc.want == http.StatusOK && !strings.Contains(string(b), "proxy-alice") {
			t.Error("the page does not name the proxy's user")
		}
	}
}

func TestHashPassword(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "hash-password"}, strings.NewReader("long enough secret\n"), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	hash := strings.TrimSpace(stdout.String())
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("long enough secret")) != nil {
		t.Errorf("%q is not a bcrypt hash of the password", hash)
	}
	if code := run(context.Background(), []string{"serve", "hash-password"}, strings.NewReader("short\n"), &stdout, &stderr); code != exitUsage {
		t.Errorf("a short password: exit %d", code)
	}
}

// A workbook with several sheets is checked on its first; the page offers
// the others, and checking another reads that one.
func TestConsoleOffersTheOtherSheets(t *testing.T) {
	h := newConsoleHarness(t)
	s := h.newSession(t)
	s.mustLogin()
	wb := excelize.NewFile()
	defer wb.Close()
	if err := wb.SetSheetName("Sheet1", "Notes"); err != nil {
		t.Fatal(err)
	}
	_ = wb.SetSheetRow("Notes", "A1", &[]any{"provider", "eid", "account_name"})
	_ = wb.SetSheetRow("Notes", "A2", &[]any{"thingspace", "not an eid", "acct"})
	if _, err := wb.NewSheet("March batch"); err != nil {
		t.Fatal(err)
	}
	_ = wb.SetSheetRow("March batch", "A1", &[]any{"provider", "eid", "account_name"})
	for i := range 3 {
		_ = wb.SetSheetRow("March batch", fmt.Sprintf("A%d", i+2), &[]any{"thingspace", testEID(i), "0000123456-00001"})
	}
	var buf bytes.Buffer
	if err := wb.Write(&buf); err != nil {
		t.Fatal(err)
	}
	resp, _ := s.upload("batches.xlsx", buf.Bytes(), nil, true)
	page := resp.Header.Get("Location")
	id := strings.TrimPrefix(page, "/uploads/")
	var up console.Upload
	h.apiGet(t, "/api/uploads/"+id, &up)
	if up.Sheet != "Notes" || strings.Join(up.Sheets, "|") != "Notes|March batch" || up.Invalid != 1 {
		t.Fatalf("first check: sheet %q of %v, %d invalid", up.Sheet, up.Sheets, up.Invalid)
	}
	if _, body := s.get(page); !strings.Contains(body, `id="sheet-choice"`) || !strings.Contains(body, "March batch") {
		t.Error("the page does not offer the other sheet")
	}
	resp, _ = s.post(page+"/revalidate", url.Values{"csrf": {s.csrf}, "sheet": {"March batch"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revalidate: %s", resp.Status)
	}
	h.apiGet(t, "/api/uploads/"+id, &up)
	if up.Sheet != "March batch" || up.Rows != 3 || up.Valid != 3 || up.Invalid != 0 {
		var page struct{ Problems []ingest.Problem }
		h.apiGet(t, "/api/uploads/"+id+"/problems", &page)
		t.Errorf("second sheet: %q, %d rows, %d valid, %d invalid: %v", up.Sheet, up.Rows, up.Valid, up.Invalid, page.Problems)
	}
}

// simbulk serve itself: it refuses to start without users, serves over
// TLS with Secure cookies from the config's certificate, and stops with
// exit 0 when its context ends (SIGTERM in main).
func TestServeOverTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedCert(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	noUsers := filepath.Join(dir, "nousers.yaml")
	if err := os.WriteFile(noUsers, []byte("providers: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--config", noUsers, "--db", filepath.Join(dir, "x.db"), "--data", filepath.Join(dir, "c")},
		nil, &stdout, &stderr); code != exitFatal || !strings.Contains(stderr.String(), "no console users") {
		t.Errorf("without users: exit %d, %s", code, &stderr)
	}
	cfg := filepath.Join(dir, "simbulk.yaml")
	conf := fmt.Sprintf("providers: {}\nconsole:\n  users:\n    - name: %s\n      password_hash: %q\n  tls:\n    cert: %s\n    key: %s\n", testUser, hash, cert, key)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := newSyncBuffer()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "simbulk.db"),
			"--data", filepath.Join(dir, "console")}, nil, io.Discard, logs)
	}()
	var base string
	for base == "" {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, logs)
		default:
		}
		if m := regexp.MustCompile(`url=(https://\S+)`).FindStringSubmatch(logs.String()); m != nil {
			base = m[1]
		}
		runtime.Gosched()
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // our own self-signed cert
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /login over TLS: %s", resp.Status)
	}
	for _, ck := range resp.Cookies() {
		if !ck.Secure || !ck.HttpOnly {
			t.Errorf("cookie %s over TLS: Secure %v HttpOnly %v", ck.Name, ck.Secure, ck.HttpOnly)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "console"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("serve stopped with exit %d, want 0:\n%s", code, logs)
	}
}

// selfSignedCert writes a certificate and key for 127.0.0.1.
func selfSignedCert(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "simbulk test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "console.crt"), filepath.Join(dir, "console.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// A run the command line drives on the same checkpoint shows up in the
// console and updates live, marked as driven by another process, with
// nothing the console could do to it but watch.
func TestConsoleFollowsARunTheCLIDrives(t *testing.T) {
	h := newConsoleHarness(t)
	dir := t.TempDir()
	manifest := filepath.Join(dir, "mixed.csv")
	if err := os.WriteFile(manifest, readSample(t, "mixed.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("simbulk", "run", manifest, "--simulate", "slow", "--concurrency", "1", "--db", h.db, "--out", h.out)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	// The run appears once the CLI has created it; its event stream then
	// shows it moving while the CLI holds the checkpoint.
	var runID string
	for runID == "" {
		var list []statusJSON
		h.apiGet(t, "/api/runs", &list)
		if len(list) == 1 {
			runID = list[0].RunID
		}
		select {
		case err := <-ended:
			t.Fatalf("the CLI ended (%v) before its run appeared:\n%s", err, &out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	v := h.waitForRun(t, runID, func(v runView) bool { return v.Done > 0 && v.Done < v.Total })
	if v.Worker != "another simbulk process" || v.Can["stop"] || v.Can["resume"] || v.Can["reconcile"] {
		t.Errorf("while the CLI drives it: worker %q, can %v", v.Worker, v.Can)
	}
	if err := <-ended; err != nil {
		t.Fatalf("CLI run: %v\n%s", err, &out)
	}
	v = h.waitForRun(t, runID, func(v runView) bool { return v.Worker == "" })
	if v.State != pipeline.RunCompleted || v.Counts[pipeline.Succeeded] != 30 || v.StartedBy != "command line" || !v.Can["reconcile"] {
		t.Errorf("after the CLI finished: %s %v, started by %q, can %v", v.State, v.Counts, v.StartedBy, v.Can)
	}
}
