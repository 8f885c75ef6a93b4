package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/simbulk/simbulk/pipeline"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a checkpoint in a PostgreSQL database: a pipeline.Store that
// several processes, on several hosts, may use at once.
type Store struct {
	pool     *pgxpool.Pool
	readOnly bool
	now      func() time.Time

	callbacksSwept atomic.Int64 // when PutCallback last dropped old results, Unix ns
}

var _ pipeline.Store = (*Store)(nil)

// Option configures a Store as Open opens it.
type Option func(*Store)

// WithClock sets the clock that stamps the times the store records itself
// (runs created, updated and finished; rows stored; time.Now by default).
// The engine's own times come with its calls.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// migrationLock is the pg_advisory_lock key that serialises migrations:
// two hosts starting at once must not both create the tables.
const migrationLock = 0x73696d62756c6b // "simbulk"

// Open connects to the database named by connString (a postgres:// URL or
// key=value string) and brings its schema up to date under the migration
// lock. Error messages never repeat the password.
func Open(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	s, err := connect(ctx, connString, false, opts)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open checkpoint %s: %w", Redact(connString), err)
	}
	return s, nil
}

// OpenReadOnly connects for reading only, as status and report need: the
// session refuses writes (default_transaction_read_only) and so does the
// store, with pipeline.ErrReadOnly. It upgrades nothing, so the schema
// must be the one this simbulk knows.
func OpenReadOnly(ctx context.Context, connString string) (*Store, error) {
	s, err := connect(ctx, connString, true, nil)
	if err != nil {
		return nil, err
	}
	version, err := s.version(ctx, s.pool)
	if err == nil {
		err = checkVersion(version)
	}
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open checkpoint %s: %w", Redact(connString), err)
	}
	return s, nil
}

func connect(ctx context.Context, connString string, readOnly bool, opts []Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's own message redacts the password; say which setting
		// failed without repeating the string.
		return nil, fmt.Errorf("checkpoint connection string: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "simbulk"
	if readOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint %s: %w", Redact(connString), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open checkpoint %s: %w", Redact(connString), err)
	}
	s := &Store{pool: pool, readOnly: readOnly, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// migrationNames lists the embedded migrations in order.
func migrationNames() ([]string, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func checkVersion(version int) error {
	names, err := migrationNames()
	if err != nil {
		return err
	}
	switch {
	case version > len(names):
		return fmt.Errorf("checkpoint schema version %d is newer than this simbulk knows (%d): upgrade simbulk", version, len(names))
	case version < len(names):
		return fmt.Errorf("checkpoint has an older schema (version %d of %d); a command that writes (simbulk resume) upgrades it", version, len(names))
	}
	return nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// version is the number of migrations applied: 0 for an empty database.
func (s *Store) version(ctx context.Context, q querier) (int, error) {
	var version int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version)
	if isUndefinedTable(err) {
		return 0, nil
	}
	return version, err
}

// migrate applies the embedded migrations not yet recorded, each in its
// own transaction, holding the migration lock so that processes starting
// together take turns: the second finds the schema up to date.
func (s *Store) migrate(ctx context.Context) error {
	names, err := migrationNames()
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	// The lock is the session's: release it on this connection, even
	// when ctx has ended.
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	version, err := s.version(ctx, conn)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(names) {
		return checkVersion(version)
	}
	for i := version; i < len(names); i++ {
		body, err := migrations.ReadFile(path.Join("migrations", names[i]))
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", i+1, names[i])
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
	}
	return nil
}

// write runs fn in a transaction and returns once it is committed: an
// intent written through here is durable before its request leaves. A
// read-only store refuses.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.readOnly {
		return pipeline.ErrReadOnly
	}
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// Close closes the store's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// ErrNoBackup is returned by Backup: a PostgreSQL checkpoint is backed up
// by the database's own tools.
var ErrNoBackup = errors.New("a checkpoint in PostgreSQL is backed up with pg_dump or the server's own backups, not by simbulk")

// Backup refuses: see ErrNoBackup.
func (s *Store) Backup(ctx context.Context, dest string) error { return ErrNoBackup }
