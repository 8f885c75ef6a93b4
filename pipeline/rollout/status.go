package rollout

import (
	"context"

	"github.com/simbulk/simbulk/pipeline"
)

// RunStatus is where a run stands, in the documented shape of
// `simbulk status --json`; the console's JSON API answers in the same
// shape, so a script moves between the two unchanged.
type RunStatus struct {
	RunID    string            `json:"run_id"`
	Manifest string            `json:"manifest"`
	State    pipeline.RunState `json:"state"`
	// Loaded is false while the manifest is still going into the
	// checkpoint, or when loading was cut short (nothing was sent then).
	Loaded bool            `json:"loaded"`
	Counts pipeline.Counts `json:"counts"`
	// Workers are the processes working on the run now (one run's status
	// only; several at once on a PostgreSQL checkpoint).
	Workers []pipeline.Worker `json:"workers,omitempty"`
}

// NewRunStatus is run's status with its rows by state.
func NewRunStatus(run pipeline.Run, c pipeline.Counts) RunStatus {
	if c == nil {
		c = pipeline.Counts{}
	}
	return RunStatus{RunID: run.ID, Manifest: run.Manifest, State: run.State, Loaded: run.Loaded, Counts: c}
}

// Statuses lists every run of the checkpoint with its counts, newest
// first.
func (s *Service) Statuses(ctx context.Context) ([]RunStatus, []pipeline.Run, error) {
	runs, err := s.Store.Runs(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make([]RunStatus, 0, len(runs))
	for _, r := range runs {
		counts, err := s.Store.Counts(ctx, r.ID)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, NewRunStatus(r, counts))
	}
	return out, runs, nil
}
