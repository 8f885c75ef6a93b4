-- The engine's own queries (due rows, accepted rows, open rows left) ask
-- for one provider's rows in one state, in row order. Without this index
-- SQLite answers them by walking the whole run in row order, which makes
-- every poll of a million-row run read the whole table.
CREATE INDEX rows_open ON rows (run_id, provider, state, row, next_attempt_at);
