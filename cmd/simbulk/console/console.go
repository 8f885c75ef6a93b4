package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/metrics"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/reports"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultUploadLimit is the largest manifest an upload may carry unless
// the config says otherwise.
const DefaultUploadLimit = 100 << 20

// Options configure a console.
type Options struct {
	// Service runs rollouts and reconciliations on the checkpoint; its
	// Lock is the checkpoint lock, which decides whether the console or
	// another simbulk drives the checkpoint.
	Service *rollout.Service
	// Busy reports whether another process holds the checkpoint lock (a
	// `simbulk run` in a terminal, a cron reconcile); nil: never.
	Busy func() bool
	// Shared says several processes may work on one run at once (a
	// PostgreSQL checkpoint, rows under leases): the console then joins
	// a run others work on instead of waiting for them.
	Shared bool
	// ReportsDir is where run report directories go (--out).
	ReportsDir string
	// DataDir holds uploads and the action log, owner-only.
	DataDir string
	// Users may log in; Proxy optionally trusts a reverse proxy's
	// authenticated-user header.
	Users []User
	Proxy ProxyAuth
	// UploadLimit is the largest upload in bytes (0: DefaultUploadLimit).
	UploadLimit int64
	// Secure marks cookies Secure: the console is served over TLS.
	Secure bool
	// Metrics, when set, is served at /metrics and told of every request
	// the console's rollouts and reconciliations make, and of the runs it
	// sees running (whoever drives them).
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Server is the console: an http.Handler and the rollouts it drives.
type Server struct {
	o       Options
	store   pipeline.Store
	log     *slog.Logger
	auth    *auth
	uploads *uploads
	jobs    *jobs
	audit   *auditLog
	pages   map[string]*template.Template
	mux     *http.ServeMux
	cache   viewCache
}

// New builds a console over the service's checkpoint, creating the data
// directory owner-only if needed.
func New(o Options) (*Server, error) {
	if o.Service == nil || o.Service.Store == nil {
		return nil, errors.New("console: no checkpoint")
	}
	if o.UploadLimit <= 0 {
		o.UploadLimit = DefaultUploadLimit
	}
	if o.ReportsDir == "" {
		o.ReportsDir = reports.DefaultDir
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Busy == nil {
		o.Busy = func() bool { return false }
	}
	if o.DataDir == "" {
		return nil, errors.New("console: no data directory")
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	o.DataDir = dir
	if err := os.MkdirAll(filepath.Join(dir, "uploads"), 0o700); err != nil {
		return nil, fmt.Errorf("console data directory: %w", err)
	}
	// An existing directory keeps its mode from before: uploads hold
	// customer data, so tighten it rather than trust it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("console data directory: %w", err)
	}
	a, err := newAuth(o.Users, o.Proxy, o.Secure, o.Now)
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, store: o.Service.Store, log: o.Logger, auth: a, pages: pages,
		uploads: &uploads{dir: filepath.Join(dir, "uploads"), limit: o.UploadLimit, now: o.Now},
		jobs:    newJobs(),
		audit:   &auditLog{path: filepath.Join(dir, "actions.jsonl"), now: o.Now},
	}
	s.routes()
	return s, nil
}

// Handler is the console's HTTP handler.
func (s *Server) Handler() http.Handler { return securityHeaders(s.mux) }

// Shutdown stops the console's rollout or reconciliation gracefully (the
// run stays resumable, exactly as after Ctrl-C on the command line) and
// waits for it until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.jobs.stopAll(ctx) }

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if s.o.Metrics != nil {
		m.Handle("GET /metrics", s.o.Metrics.Handler())
	}
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.Handle("POST /logout", s.page(s.logout))

	m.Handle("GET /{$}", s.page(s.runsPage))
	m.Handle("POST /uploads", s.page(s.uploadPage))
	m.Handle("GET /uploads/{id}", s.page(s.validationPage))
	m.Handle("POST /uploads/{id}/revalidate", s.page(s.revalidatePage))
	m.Handle("GET /uploads/{id}/problems.csv", s.page(s.problemsCSV))
	m.Handle("GET /uploads/{id}/invalid-rows.csv", s.page(s.invalidRowsCSV))
	m.Handle("GET /uploads/{id}/confirm", s.page(s.confirmPage))
	m.Handle("POST /uploads/{id}/start", s.page(s.startPage))
	m.Handle("GET /runs/{id}", s.page(s.runPage))
	m.Handle("POST /runs/{id}/{action}", s.page(s.actionPage))
	m.Handle("GET /runs/{id}/reports/{file}", s.page(s.reportFile))
	m.Handle("GET /runs/{id}/reconciliations", s.page(s.reconcilePage))

	m.Handle("GET /api/runs", s.api(s.apiRuns))
	m.Handle("GET /api/runs/{id}", s.api(s.apiRun))
	m.Handle("GET /api/runs/{id}/events", s.api(s.apiEvents))
	m.Handle("GET /api/runs/{id}/reconciliations", s.api(s.apiReconciliations))
	m.Handle("POST /api/runs/{id}/{action}", s.api(s.apiAction))
	m.Handle("POST /api/uploads", s.api(s.apiUpload))
	m.Handle("GET /api/uploads/{id}", s.api(s.apiUploadGet))
	m.Handle("GET /api/uploads/{id}/problems", s.api(s.apiProblems))
	m.Handle("POST /api/uploads/{id}/start", s.api(s.apiStart))
	s.mux = m
}

// securityHeaders keeps the pages to their own origin: scripts, styles
// and connections from the console only (no inline script, so a cell that
// slipped past escaping still could not run), never framed.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}
