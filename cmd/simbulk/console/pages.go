package console

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/rollout"
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/reports"
)

const pageSize = 50

var funcs = template.FuncMap{
	"states": func() []pipeline.State { return pipeline.States },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"providers":       sortedProviders,
	"providerNames":   providers.Names,
	"base":            path.Base,
	"percent":         func(n, of int) int { return n * 100 / max(of, 1) },
	"add":             func(a, b int) int { return a + b },
	"sub":             func(a, b int) int { return a - b },
	"duration":        func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"excelDamageCode": func() string { return ingest.CodeExcelDamage },
	"n":               func(c pipeline.Counts, s string) int { return c[pipeline.State(s)] },
	"open":            func(c pipeline.Counts) int { return c[pipeline.Pending] + c[pipeline.InFlight] + c[pipeline.Accepted] },
}

// parsePages parses each page with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	layout, err := fs.ReadFile(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		body, err := fs.ReadFile(templateFS, n)
		if err != nil {
			return nil, err
		}
		t, err := template.New("layout").Funcs(funcs).Parse(string(layout))
		if err == nil {
			_, err = t.Parse(string(body))
		}
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page name with data; the layout gets the user and the
// CSRF token. The page is rendered to a buffer first, so a template error
// is a clean 500, not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data map[string]any) {
	t := s.pages[name]
	if data == nil {
		data = map[string]any{}
	}
	if u := userOf(r.Context()); u != nil {
		data["User"], data["CSRF"] = u.user, u.csrf
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("console: render", "page", name, "error", err.Error())
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}

// fail answers err on a page, with the status it implies.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.errorPage(w, r, statusOf(err), err.Error())
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, errNotFound), errors.Is(err, pipeline.ErrNoRun):
		return http.StatusNotFound
	case errors.Is(err, ErrBusy), strings.Contains(err.Error(), "another simbulk"):
		return http.StatusConflict
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	runs, err := s.runList(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "runs", map[string]any{"Runs": runs, "Limit": s.o.UploadLimit >> 20})
}

// receiveUpload takes an upload from the request and validates it.
func (s *Server) receiveUpload(w http.ResponseWriter, r *http.Request) (*Upload, error) {
	user := userOf(r.Context()).user
	// The body may be a little larger than the file (the form's fields
	// and boundaries); the file itself is held to the limit exactly.
	r.Body = http.MaxBytesReader(w, r.Body, s.o.UploadLimit+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("not an upload: %w", err)
	}
	up, err := s.uploads.receive(mr, user)
	var mbe *http.MaxBytesError
	if errors.Is(err, ErrTooLarge) || errors.As(err, &mbe) {
		s.recordAction(Action{User: user, Action: "upload", Detail: "refused: larger than the upload limit"})
		return nil, fmt.Errorf("%w: the file is larger than the upload limit of %d MiB; split the manifest, or raise console.upload_limit_mib in the config", ErrTooLarge, s.o.UploadLimit>>20)
	}
	if err != nil {
		return nil, err
	}
	if up.Provider != "" && !slices.Contains(providers.Names(), up.Provider) {
		return nil, fmt.Errorf("unknown provider %q (%s)", up.Provider, strings.Join(providers.Names(), ", "))
	}
	if err := s.uploads.validate(r.Context(), up, s.validateOptions(up.Provider)); err != nil {
		return nil, err
	}
	s.recordAction(Action{User: user, Action: "upload", Upload: up.ID,
		Detail: fmt.Sprintf("%s: %d rows, %d valid, %d invalid", up.Name, up.Rows, up.Valid, up.Invalid)})
	return up, nil
}

func (s *Server) validateOptions(provider string) ingest.ValidateOptions {
	if s.o.Service.Validate == nil {
		return ingest.ValidateOptions{Provider: provider}
	}
	return s.o.Service.Validate(provider)
}

func (s *Server) uploadPage(w http.ResponseWriter, r *http.Request) {
	up, err := s.receiveUpload(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/uploads/"+up.ID, http.StatusSeeOther)
}

func (s *Server) upload(r *http.Request) (*Upload, error) {
	up, ok := s.uploads.get(r.PathValue("id"))
	if !ok {
		return nil, fmt.Errorf("%w: no such upload", errNotFound)
	}
	return up, nil
}

// problemPage is one page of an upload's problems under a filter.
type problemPage struct {
	Code, Column string
	Page, Pages  int
	Total        int
	Problems     []ingest.Problem
}

func (s *Server) problemPage(r *http.Request, up *Upload) (problemPage, error) {
	q := r.URL.Query()
	p := problemPage{Code: q.Get("code"), Column: q.Get("column")}
	p.Page, _ = strconv.Atoi(q.Get("page"))
	p.Total = up.total(p.Code, p.Column)
	p.Pages = max(1, (p.Total+pageSize-1)/pageSize)
	p.Page = min(max(p.Page, 1), p.Pages)
	var err error
	p.Problems, err = s.uploads.problems(up, p.Code, p.Column, (p.Page-1)*pageSize, pageSize)
	return p, err
}

func (s *Server) validationPage(w http.ResponseWriter, r *http.Request) {
	up, err := s.upload(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pp, err := s.problemPage(r, up)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	codes := slices.SortedFunc(maps.Keys(up.ByCode), func(a, b string) int { return up.ByCode[b] - up.ByCode[a] })
	// Problems with the whole row (a field count) have no column to
	// filter by; the code filter finds them.
	columns := slices.DeleteFunc(slices.Sorted(maps.Keys(up.ByColumn)), func(c string) bool { return c == "" })
	s.render(w, r, http.StatusOK, "upload", map[string]any{"Up": up, "P": pp, "Codes": codes, "Columns": columns,
		"ExcelDamage": up.ByCode[ingest.CodeExcelDamage]})
}

// revalidatePage validates the upload again with another sheet or
// provider.
func (s *Server) revalidatePage(w http.ResponseWriter, r *http.Request) {
	up, err := s.upload(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	up.Sheet, up.Provider = r.PostFormValue("sheet"), r.PostFormValue("provider")
	if up.Provider != "" && !slices.Contains(providers.Names(), up.Provider) {
		s.fail(w, r, fmt.Errorf("unknown provider %q", up.Provider))
		return
	}
	if err := s.uploads.validate(r.Context(), up, s.validateOptions(up.Provider)); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/uploads/"+up.ID, http.StatusSeeOther)
}

// problemsCSV downloads every problem under the page's filter.
func (s *Server) problemsCSV(w http.ResponseWriter, r *http.Request) {
	up, err := s.upload(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", strings.TrimSuffix(up.Name, path.Ext(up.Name))+"-problems.csv"))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"row", "column", "code", "severity", "value", "message"})
	const chunk = 10000
	for off := 0; ; off += chunk {
		ps, err := s.uploads.problems(up, q.Get("code"), q.Get("column"), off, chunk)
		if err != nil {
			s.log.Error("console: problems download", "upload", up.ID, "error", err.Error())
			return
		}
		for _, p := range ps {
			_ = cw.Write([]string{strconv.Itoa(p.Row), p.Column, p.Code, string(p.Severity), reports.Neutralise(p.Value), p.Message})
		}
		if len(ps) < chunk {
			break
		}
	}
	cw.Flush()
}

// invalidRowsCSV downloads the invalid rows as they were, under the
// manifest's header, to fix and upload again.
func (s *Server) invalidRowsCSV(w http.ResponseWriter, r *http.Request) {
	up, err := s.upload(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := os.Open(s.uploads.path(up.ID, invalidFile))
	if err != nil {
		s.errorPage(w, r, http.StatusNotFound, "this upload has no invalid rows file")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", strings.TrimSuffix(up.Name, path.Ext(up.Name))+"-invalid-rows.csv"))
	_, _ = io.Copy(w, f)
}

func (s *Server) plan(r *http.Request, up *Upload) (rollout.Plan, error) {
	return s.o.Service.Plan(r.Context(), s.uploads.path(up.ID, up.Name), rollout.PlanOptions{Provider: up.Provider, Sheet: up.Sheet})
}

func (s *Server) confirmPage(w http.ResponseWriter, r *http.Request) {
	up, err := s.upload(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pl, err := s.plan(r, up)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ready := pl.Valid > 0
	for _, p := range pl.Providers {
		if p.NotConfigured != nil && p.Rows > 0 {
			ready = false
		}
	}
	s.render(w, r, http.StatusOK, "confirm", map[string]any{"Up": up, "Plan": pl, "Ready": ready})
}

func (s *Server) startPage(w http.ResponseWriter, r *http.Request) {
	id, err := s.start(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/runs/"+id, http.StatusSeeOther)
}

// start starts the rollout of the request's upload.
func (s *Server) start(r *http.Request) (string, error) {
	up, err := s.upload(r)
	if err != nil {
		return "", err
	}
	user := userOf(r.Context()).user
	if up.Unreadable != "" || up.Valid == 0 {
		return "", errors.New("this upload has no valid rows to provision")
	}
	id, err := s.startRollout(user, up)
	a := Action{User: user, Action: "start", RunID: id, Upload: up.ID, Detail: fmt.Sprintf("%s: %d valid rows", up.Name, up.Valid)}
	if err != nil {
		a.Detail = "refused: " + err.Error()
	}
	s.recordAction(a)
	if err != nil {
		return "", err
	}
	up.RunID = id
	_ = s.uploads.save(up)
	return id, nil
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.runView(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "run", map[string]any{"Run": v, "Message": r.URL.Query().Get("msg")})
}

func (s *Server) actionPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	msg, err := s.act(r.Context(), userOf(r.Context()).user, id, r.PathValue("action"), r.PostFormValue("all") != "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.PathValue("action") == "reconcile" {
		http.Redirect(w, r, "/runs/"+id+"/reconciliations", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/runs/"+id+"?msg="+url.QueryEscape(msg), http.StatusSeeOther)
}

func (s *Server) reconcilePage(w http.ResponseWriter, r *http.Request) {
	run, err := s.store.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	recs, err := s.reconciliations(r.Context(), run.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := RunView{Can: map[string]bool{}}
	v.RunStatus = rollout.NewRunStatus(run, nil)
	if c, err := s.store.Counts(r.Context(), run.ID); err == nil {
		v.Counts = c
	}
	s.whoDrives(&v)
	s.render(w, r, http.StatusOK, "reconcile", map[string]any{"Run": v, "Recs": recs, "Reports": s.reportFiles(run.ID)})
}
