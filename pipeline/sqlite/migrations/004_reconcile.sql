-- Reconciliations: nightly comparisons of a run's rows with what the
-- providers hold. Checkpointed row by row so that an interrupted
-- reconciliation of a large fleet resumes where it stopped.
CREATE TABLE reconciliations (
    id          TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id),
    state       TEXT NOT NULL,           -- running | interrupted | completed
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX reconciliations_by_run ON reconciliations (run_id, created_at);

CREATE TABLE reconcile_rows (
    reconcile_id TEXT NOT NULL REFERENCES reconciliations (id),
    row          INTEGER NOT NULL,
    provider     TEXT NOT NULL,
    status       TEXT NOT NULL,          -- pending | in_sync | drift | not_provisioned | error
    findings     TEXT NOT NULL DEFAULT '[]',  -- JSON: drift found in this row
    tries        INTEGER NOT NULL DEFAULT 0,
    note         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (reconcile_id, row)
) WITHOUT ROWID;
CREATE INDEX reconcile_rows_open ON reconcile_rows (reconcile_id, provider, status, row);
