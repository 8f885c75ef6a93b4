-- Workers: the processes working on a run, each with a lease it renews
-- while it lives, by the database's clock (the one every host shares). A
-- row's lease_owner holds it only while that worker's lease lives.
CREATE TABLE workers (
    run_id     text NOT NULL REFERENCES runs (id),
    id         text NOT NULL,
    host       text NOT NULL DEFAULT '',
    pid        integer NOT NULL DEFAULT 0,
    joined_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    ttl        interval NOT NULL,
    PRIMARY KEY (run_id, id)
);
ALTER TABLE rows ADD COLUMN lease_owner text;

-- Pauses of a provider's requests that every worker of the run honours:
-- a 429's Retry-After, an outage's pause.
CREATE TABLE provider_pauses (
    run_id   text NOT NULL REFERENCES runs (id),
    provider text NOT NULL,
    until    timestamptz NOT NULL,
    PRIMARY KEY (run_id, provider)
);
