package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/simbulk/simbulk/ingest"
)

// loadBatch is how many rows share one transaction while a manifest is
// loaded: big enough that commits are a small part of a million-row load,
// small enough to keep memory flat (two batches are held at once, see
// Load).
const loadBatch = 5000

// Load streams a manifest through validation into a run's rows: valid rows
// become pending (or skipped when an earlier run already provisioned
// them), invalid rows are stored as invalid with their problems, so the
// reports can hand them back. It returns the validation summary and any
// header-level problems. The identifiers other runs hold in doubt are
// asked for once, before the first row.
//
// A batch is stored while the next one is validated: the store's writes
// and the validation each take one core, where in turn they took the sum
// of both.
func Load(ctx context.Context, c LoadStore, run Run, r ingest.Reader, opts ingest.ValidateOptions) (ingest.Summary, []ingest.Problem, error) {
	doubt, err := c.InDoubtElsewhere(ctx, run.ID)
	if err != nil {
		return ingest.Summary{}, nil, err
	}
	batch, stored := make([]RowRecord, 0, loadBatch), make([]RowRecord, 0, loadBatch)
	var storing chan error // the write of stored, while one is under way
	wait := func() error {
		if storing == nil {
			return nil
		}
		err := <-storing
		storing = nil
		return err
	}
	flush := func() error {
		if err := wait(); err != nil || len(batch) == 0 {
			return err
		}
		batch, stored = stored[:0], batch
		storing = make(chan error, 1)
		go func(rows []RowRecord) { storing <- c.AddRowsWithDoubts(ctx, rows, doubt) }(stored)
		return nil
	}
	sum, headerProblems, err := ingest.Scan(r, opts, func(row ingest.Row, problems []ingest.Problem) error {
		rec := RowRecord{RunID: run.ID, Row: row.Number, Provider: row.Provider, EID: row.EID, ICCID: row.ICCID,
			CLI: row.CLI, IMEI: row.IMEI, Fields: row.Fields(), Cells: row.Values, State: Pending}
		if ingest.HasErrors(problems) {
			rec.State = Invalid
			rec.ErrorCode, rec.ErrorMessage = describeProblems(problems)
		}
		batch = append(batch, rec)
		if len(batch) == loadBatch {
			if err := ctx.Err(); err != nil {
				return err
			}
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	// Whatever stopped the scan, the last write must be over before Load
	// returns; its error counts when nothing else went wrong first.
	if werr := wait(); err == nil {
		err = werr
	}
	if err != nil {
		return sum, headerProblems, fmt.Errorf("load manifest into checkpoint: %w", err)
	}
	return sum, headerProblems, nil
}

// describeProblems turns a row's problems into one error code (the first
// error's) and one message naming each column, for reports and status.
func describeProblems(problems []ingest.Problem) (code, message string) {
	var parts []string
	for _, p := range problems {
		if p.Severity != ingest.SeverityError {
			continue
		}
		if code == "" {
			code = p.Code
		}
		if p.Column != "" {
			parts = append(parts, fmt.Sprintf("%s: %s", p.Column, p.Message))
		} else {
			parts = append(parts, p.Message)
		}
	}
	return code, strings.Join(parts, "; ")
}
