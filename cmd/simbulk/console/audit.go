package console

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"
)

// Action is one thing a person did in the console, as the run page shows
// it and the action log keeps it.
type Action struct {
	Time   time.Time `json:"time"`
	User   string    `json:"user"`
	Action string    `json:"action"` // upload, start, stop, resume, retry-failed, reconcile
	RunID  string    `json:"run_id,omitempty"`
	Upload string    `json:"upload_id,omitempty"`
	// Detail says what came of it: the manifest uploaded, rows re-queued,
	// or why it was refused.
	Detail string `json:"detail,omitempty"`
}

// auditLog is the console's action log: one JSON line per action in the
// data directory, appended and synced before the action's answer, so what
// a person did outlives the process. It is small (a line per click), so
// reading it whole is fine.
type auditLog struct {
	path string
	now  func() time.Time
	mu   sync.Mutex
}

func (l *auditLog) record(a Action) error {
	a.Time = l.now().UTC()
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// actions returns the recorded actions that keep says to, newest first.
func (l *auditLog) actions(keep func(Action) bool) ([]Action, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Action
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var a Action
		if json.Unmarshal(sc.Bytes(), &a) != nil {
			continue // a line cut by a crash mid-write; the rest still reads
		}
		if keep(a) {
			out = append(out, a)
		}
	}
	slices.Reverse(out)
	return out, sc.Err()
}

// startedBy maps each run to who started it from the console; runs
// started on the command line are not in it.
func (l *auditLog) startedBy() map[string]Action {
	acts, _ := l.actions(func(Action) bool { return true })
	return startersOf(acts)
}

// startersOf picks from acts (newest first) the oldest start of each run.
func startersOf(acts []Action) map[string]Action {
	out := map[string]Action{}
	for _, a := range acts {
		if a.Action == "start" && a.RunID != "" {
			out[a.RunID] = a
		}
	}
	return out
}
