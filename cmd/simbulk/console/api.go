package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/simbulk/simbulk/ingest"
)

// The JSON API: the same data as the pages, for scripts. Runs answer in
// the `status --json` shape (run_id, manifest, state, loaded, counts) with
// more fields beside it; errors are {"error": "..."} with a fitting
// status.

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func apiFail(w http.ResponseWriter, err error) { writeJSONError(w, statusOf(err), err.Error()) }

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := s.runList(r.Context())
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, runs)
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) {
	v, err := s.runView(r.Context(), r.PathValue("id"))
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiReconciliations(w http.ResponseWriter, r *http.Request) {
	run, err := s.store.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		apiFail(w, err)
		return
	}
	recs, err := s.reconciliations(r.Context(), run.ID)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, recs)
}

func (s *Server) apiAction(w http.ResponseWriter, r *http.Request) {
	msg, err := s.act(r.Context(), userOf(r.Context()).user, r.PathValue("id"), r.PathValue("action"), r.URL.Query().Get("all") == "true")
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": r.PathValue("id"), "action": r.PathValue("action"), "message": msg})
}

func (s *Server) apiUpload(w http.ResponseWriter, r *http.Request) {
	up, err := s.receiveUpload(w, r)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, up)
}

func (s *Server) apiUploadGet(w http.ResponseWriter, r *http.Request) {
	up, err := s.upload(r)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, up)
}

func (s *Server) apiProblems(w http.ResponseWriter, r *http.Request) {
	up, err := s.upload(r)
	if err != nil {
		apiFail(w, err)
		return
	}
	p, err := s.problemPage(r, up)
	if err != nil {
		apiFail(w, err)
		return
	}
	if p.Problems == nil {
		p.Problems = []ingest.Problem{} // an empty page is [], not null
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": p.Code, "column": p.Column, "page": p.Page, "pages": p.Pages,
		"total": p.Total, "problems": p.Problems})
}

func (s *Server) apiStart(w http.ResponseWriter, r *http.Request) {
	id, err := s.start(r)
	if err != nil {
		apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id})
}

// How often the event stream reads the checkpoint, and how often it sends
// a comment to keep proxies from closing a quiet stream.
const (
	eventEvery     = time.Second
	keepAliveEvery = 15 * time.Second
)

// apiEvents streams a run as server-sent events: an event "run" with the
// RunView whenever it changes, read from the checkpoint, so a run driven
// by the command line updates the page as one driven here does.
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	run, err := s.store.Run(ctx, r.PathValue("id"))
	if err != nil {
		apiFail(w, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: pass events through at once
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	tick := time.NewTicker(eventEvery)
	defer tick.Stop()
	var last []byte
	quiet := time.Now()
	for {
		v, err := s.streamView(ctx, run.ID)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("console: event stream", "run", run.ID, "error", err.Error())
		} else if b, err := json.Marshal(v); err == nil && !bytes.Equal(b, last) {
			last = b
			if _, err := fmt.Fprintf(w, "event: run\ndata: %s\n\n", b); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			quiet = time.Now()
		} else if time.Since(quiet) >= keepAliveEvery {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			quiet = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
