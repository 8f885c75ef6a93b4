-- The checkpoint as SQLite's migrations 001-005 leave it, in PostgreSQL's
-- types: JSON in jsonb, times in timestamptz, flags in boolean.

-- Runs: one per manifest content and provider set.
CREATE TABLE runs (
    id          text PRIMARY KEY,
    fingerprint text NOT NULL,
    manifest    text NOT NULL,
    header      jsonb NOT NULL,               -- the manifest's header as written
    options     jsonb NOT NULL DEFAULT '{}',  -- provider override, sheet
    loaded      boolean NOT NULL DEFAULT false,
    counters    jsonb NOT NULL DEFAULT '{}',  -- named counts summed over every process
    state       text NOT NULL,                -- running | interrupted | completed | aborted
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX runs_fingerprint ON runs (fingerprint, created_at);

-- Rows: every manifest row, with the original cells so reports can hand it back.
CREATE TABLE rows (
    run_id          text NOT NULL REFERENCES runs (id),
    row             integer NOT NULL,         -- as the user sees it; header = 1
    provider        text NOT NULL DEFAULT '',
    eid             text NOT NULL DEFAULT '',
    iccid           text NOT NULL DEFAULT '',
    cli             text NOT NULL DEFAULT '',
    imei            text NOT NULL DEFAULT '',
    fields          jsonb NOT NULL DEFAULT '{}',
    cells           jsonb NOT NULL DEFAULT '[]',
    state           text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,              -- a pending row waits until then; NULL: due at once
    must_lookup     boolean NOT NULL DEFAULT false, -- a request may have taken effect: look up before resending
    handle          text NOT NULL DEFAULT '',
    accepted_at     timestamptz,
    result          jsonb NOT NULL DEFAULT '{}',
    error_code      text NOT NULL DEFAULT '',
    error_message   text NOT NULL DEFAULT '',
    retryable       boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (run_id, row)
);
CREATE INDEX rows_by_state ON rows (run_id, state);
-- The engine's queries (due rows, accepted rows, open rows left) ask for
-- one provider's rows in one state, in row order.
CREATE INDEX rows_open ON rows (run_id, provider, state, row);
-- Identifiers already provisioned by any run: rows a later run must skip.
CREATE INDEX rows_done_eid   ON rows (provider, eid)   WHERE state = 'succeeded' AND eid != '';
CREATE INDEX rows_done_cli   ON rows (provider, cli)   WHERE state = 'succeeded' AND cli != '';
CREATE INDEX rows_done_iccid ON rows (provider, iccid) WHERE state = 'succeeded' AND iccid != '';

-- Attempts: one per request sent for a row; id keeps their order.
CREATE TABLE attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text NOT NULL,
    row         integer NOT NULL,
    started_at  timestamptz NOT NULL,
    latency_ms  bigint NOT NULL,
    kind        text NOT NULL,                -- submit | check | lookup
    http_status integer NOT NULL DEFAULT 0,
    outcome     text NOT NULL,                -- accepted | succeeded | failed
    error_code  text NOT NULL DEFAULT ''
);
CREATE INDEX attempts_by_row ON attempts (run_id, row);

-- Reconciliations: comparisons of a run's rows with what the providers
-- hold, checkpointed row by row so an interrupted one resumes.
CREATE TABLE reconciliations (
    id          text PRIMARY KEY,
    run_id      text NOT NULL REFERENCES runs (id),
    state       text NOT NULL,                -- running | interrupted | completed
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX reconciliations_by_run ON reconciliations (run_id, created_at);

CREATE TABLE reconcile_rows (
    reconcile_id text NOT NULL REFERENCES reconciliations (id),
    row          integer NOT NULL,
    provider     text NOT NULL,
    status       text NOT NULL,               -- pending | in_sync | drift | not_provisioned | error
    findings     jsonb NOT NULL DEFAULT '[]',
    tries        integer NOT NULL DEFAULT 0,
    note         text NOT NULL DEFAULT '',
    PRIMARY KEY (reconcile_id, row)
);
CREATE INDEX reconcile_rows_open ON reconcile_rows (reconcile_id, provider, status, row);
