-- Workers: the processes working on a run, each with a lease it renews
-- while it lives (unix ms, by the store's clock). A row's lease_owner
-- holds it only while that worker's lease lives. In SQLite one process
-- works on a checkpoint at a time (the lock file), so a worker that joins
-- ends every other's lease; the tables let the engine treat SQLite and
-- PostgreSQL alike.
CREATE TABLE workers (
    run_id     TEXT NOT NULL REFERENCES runs (id),
    id         TEXT NOT NULL,
    host       TEXT NOT NULL DEFAULT '',
    pid        INTEGER NOT NULL DEFAULT 0,
    joined_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ttl_ms     INTEGER NOT NULL,
    PRIMARY KEY (run_id, id)
) WITHOUT ROWID;
ALTER TABLE rows ADD COLUMN lease_owner TEXT;

-- Pauses of a provider's requests that every worker of the run honours:
-- a 429's Retry-After, an outage's pause.
CREATE TABLE provider_pauses (
    run_id   TEXT NOT NULL REFERENCES runs (id),
    provider TEXT NOT NULL,
    until    INTEGER NOT NULL,
    PRIMARY KEY (run_id, provider)
) WITHOUT ROWID;
