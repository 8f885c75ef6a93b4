-- One index of rows by state instead of two. Every state change of a row
-- (three per provisioned row: in flight, accepted, succeeded) rewrote an
-- entry in both rows_by_state and rows_open; with state ahead of provider
-- this one answers both kinds of query: a run's rows in a state (the
-- prefix run_id, state) and one provider's rows in a state in row order
-- (run_id, state, provider equal, then row), which the engine's claims
-- ask for many times a second.
DROP INDEX rows_by_state;
DROP INDEX rows_open;
CREATE INDEX rows_open ON rows (run_id, state, provider, row, next_attempt_at);
