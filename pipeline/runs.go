package pipeline

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Run is one rollout of one manifest.
type Run struct {
	ID          string   `json:"run_id"`
	Fingerprint string   `json:"-"`
	Manifest    string   `json:"manifest"`
	Header      []string `json:"-"`
	// Options are the run options that shaped its rows (provider
	// override, sheet), so `resume RUN_ID` reads the manifest the same way.
	Options RunOptions `json:"-"`
	// Loaded is true once every manifest row is in the checkpoint.
	Loaded     bool      `json:"-"`
	State      RunState  `json:"state"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Counters are named counts of events around the run, summed over
	// every process that worked on it (see AddRunCounters).
	Counters map[string]int64 `json:"-"`
}

// Counts are rows by state.
type Counts map[State]int

// MarshalJSON writes every state, zeros included, in lifecycle order: the
// documented status shape always has all seven keys.
func (c Counts) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range States {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%d", s, c[s])
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// Total is the number of rows counted.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Fingerprint identifies a run by what it provisions: the manifest's bytes
// and the options that change what each row means (provider override,
// sheet). The same manifest run again is the same run, wherever the file
// now lives.
func Fingerprint(manifestPath string, options ...string) (string, error) {
	f, err := os.Open(manifestPath)
	if err != nil {
		return "", fmt.Errorf("open manifest %s: %w", manifestPath, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read manifest %s: %w", manifestPath, err)
	}
	opts := append([]string(nil), options...)
	sort.Strings(opts)
	for _, o := range opts {
		h.Write([]byte{0})
		h.Write([]byte(o))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ErrNoRun is returned when a run id is not in the checkpoint.
var ErrNoRun = errors.New("no such run")

// RunOptions are the options that change what a manifest's rows mean.
type RunOptions struct {
	Provider string `json:"provider,omitempty"`
	Sheet    string `json:"sheet,omitempty"`
}

// NewRunID makes a run id that sorts by creation time and reads well in a
// directory name: 20261124-112356-3f9a2c. Every store names its runs (and,
// prefixed rc-, its reconciliations) this way, so ids look alike whichever
// database holds them.
func NewRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}
