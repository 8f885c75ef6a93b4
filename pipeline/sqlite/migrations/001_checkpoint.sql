-- Runs: one per manifest content and provider set.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    header      TEXT NOT NULL,           -- JSON array: the manifest's header as written
    state       TEXT NOT NULL,           -- running | interrupted | completed | aborted
    created_at  INTEGER NOT NULL,        -- unix milliseconds
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX runs_fingerprint ON runs (fingerprint);

-- Rows: every manifest row, with the original cells so reports can hand it back.
CREATE TABLE rows (
    run_id          TEXT NOT NULL REFERENCES runs (id),
    row             INTEGER NOT NULL,    -- as the user sees it; header = 1
    provider        TEXT NOT NULL DEFAULT '',
    eid             TEXT NOT NULL DEFAULT '',
    iccid           TEXT NOT NULL DEFAULT '',
    cli             TEXT NOT NULL DEFAULT '',
    imei            TEXT NOT NULL DEFAULT '',
    fields          TEXT NOT NULL DEFAULT '{}',  -- JSON: provider fields
    cells           TEXT NOT NULL DEFAULT '[]',  -- JSON: original cells
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,  -- unix ms; a pending row waits until then
    must_lookup     INTEGER NOT NULL DEFAULT 0,  -- a request may have taken effect: look up before resending
    handle          TEXT NOT NULL DEFAULT '',
    accepted_at     INTEGER,
    result          TEXT NOT NULL DEFAULT '{}',  -- JSON: what the provider returned
    error_code      TEXT NOT NULL DEFAULT '',
    error_message   TEXT NOT NULL DEFAULT '',
    retryable       INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (run_id, row)
) WITHOUT ROWID;
CREATE INDEX rows_by_state ON rows (run_id, state, next_attempt_at);
-- Identifiers already provisioned by any run of this checkpoint: rows that
-- a later run must skip.
CREATE INDEX rows_done_eid   ON rows (provider, eid)   WHERE state = 'succeeded' AND eid != '';
CREATE INDEX rows_done_cli   ON rows (provider, cli)   WHERE state = 'succeeded' AND cli != '';
CREATE INDEX rows_done_iccid ON rows (provider, iccid) WHERE state = 'succeeded' AND iccid != '';

-- Attempts: one per request sent for a row.
CREATE TABLE attempts (
    run_id      TEXT NOT NULL,
    row         INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    latency_ms  INTEGER NOT NULL,
    kind        TEXT NOT NULL,           -- submit | check | lookup
    http_status INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT NOT NULL,           -- accepted | succeeded | failed
    error_code  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attempts_by_row ON attempts (run_id, row);
