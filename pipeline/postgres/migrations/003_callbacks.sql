-- Callback results a provider delivered to one host, for the worker that
-- follows the row, which may be on another. Keyed by provider and by each
-- identifier the result names; a result names no run. Kept a day.
CREATE TABLE callbacks (
    provider    text NOT NULL,
    key         text NOT NULL,
    result      bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, key)
);
CREATE INDEX callbacks_received ON callbacks (received_at);
