// Package sqlite is the checkpoint as a SQLite file: the implementation of
// pipeline.Store that simbulk uses, and the only place its SQL lives.
//
// It holds the schema (migrations/, embedded, applied in order and
// recorded in user_version), every query the engine, the reconciler, the
// loader and the reports make, and the care a file of customer data
// needs: it opens only a regular file that is empty or a simbulk
// checkpoint (never a device, a FIFO, another application's database, or
// the main file of a checkpoint copied without its -wal), creates it
// owner-only, can open one read-only (falling back to immutable reads
// where SQLite may not write its -shm), and backs it up consistently with
// VACUUM INTO while a run writes to it.
//
// One goroutine owns the write connection and commits queued writes in
// small groups; every write returns only once committed, so an intent is
// durable before its request leaves. Reads go through a separate
// read-only pool, which WAL lets run beside the writer.
//
// Queries that the engine repeats many times a second name their index
// (INDEXED BY), and states are written into SQL as literals (sqlLit,
// sqlIn) where a partial index must match them.
package sqlite
