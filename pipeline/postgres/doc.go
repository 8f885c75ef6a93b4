// Package postgres is the checkpoint in a PostgreSQL database: the
// implementation of pipeline.Store for a team that runs simbulk on more
// than one host, or cannot lose a rollout with the host that ran it. Its
// SQL lives here and nowhere else.
//
// The schema is embedded (migrations/) and applied in order under a
// PostgreSQL advisory lock, each migration in its own transaction and
// recorded in schema_migrations, so hosts that start together do not race
// to create it. Every write is a transaction that has committed when the
// method returns: an intent is durable before its request leaves.
// Connection strings are never logged; Redact is what messages show.
//
// pgtest starts the throwaway server its tests, and others', run against.
package postgres
