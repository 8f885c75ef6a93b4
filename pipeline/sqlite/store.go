package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"github.com/simbulk/simbulk/pipeline"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite file that records every run and every row's
// state: a pipeline.Store. One goroutine owns all writes and commits them
// in small groups; reads go through a separate read-only pool, which WAL
// lets run beside the writer.
type Store struct {
	path    string
	writeDB *sql.DB
	read    *sql.DB
	now     func() time.Time

	ops      chan writeOp
	stopOnce sync.Once
	stopped  chan struct{}
	mu       sync.RWMutex // guards closed against sends on ops after Close
	closed   bool

	inserts groupInserts // AddRows' statements, prepared at its first call
	// The writer goroutine's own: the engine's prepared writes, and the
	// leases renewed in the transaction it is filling (renewOnce).
	markStmt, applyStmt, attemptStmt *sql.Stmt
	renewedIn                        *sql.Tx
	renewed                          map[[2]string]bool
}

type writeOp struct {
	apply func(tx *sql.Tx) error
	done  chan error // hears the commit's outcome
}

// maxGroup bounds how many writes share one transaction: large enough that
// 64 workers' intents commit together, small enough that a commit is quick.
const maxGroup = 256

var _ pipeline.Store = (*Store)(nil)

// Option configures a Store as Open opens it.
type Option func(*Store)

// WithClock sets the clock that stamps the times the store records itself
// (runs created, updated and finished; rows stored; time.Now by default),
// for tests that need fixed times. The engine's own times (retries,
// acceptance, changes it applies) come with its calls.
func WithClock(now func() time.Time) Option { return func(c *Store) { c.now = now } }

// ErrNoCheckpoint is returned by OpenExisting and OpenReadOnly when there is no
// checkpoint file.
var ErrNoCheckpoint = errors.New("no checkpoint")

// ErrNotCheckpoint is returned when --db names something that is not a
// simbulk checkpoint: a device, a FIFO, a directory, or a file that is not
// a SQLite database holding simbulk's tables. simbulk then leaves it as it
// found it.
var ErrNotCheckpoint = errors.New("not a simbulk checkpoint")

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// OpenExisting opens the checkpoint at path like Open
// but never creates one: commands that only read runs or continue them
// must not answer a mistyped --db with an empty checkpoint of their own.
func OpenExisting(p string, opts ...Option) (*Store, error) {
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: simbulk run creates it; --db names another", ErrNoCheckpoint, p)
		}
		return nil, fmt.Errorf("open checkpoint %s: %w", p, err)
	}
	return Open(p, opts...)
}

// checkFile makes sure p may be opened as a checkpoint: a regular file
// (through a symlink if need be) that is empty or a SQLite database.
// Anything else is refused before SQLite touches it: SQLite would happily
// write a header into /dev/null or fail half-way through a text file.
func checkFile(p string) (exists bool, err error) {
	fi, err := os.Stat(p) // follows a symlink: what counts is the file it names
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("open checkpoint %s: %w", p, err)
	case fi.IsDir():
		return true, fmt.Errorf("%w: %s is a directory; --db names the checkpoint file (e.g. %s)", ErrNotCheckpoint, p, path.Join(p, "simbulk.db"))
	case !fi.Mode().IsRegular():
		return true, fmt.Errorf("%w: %s is a %s, not a regular file; --db names a checkpoint file", ErrNotCheckpoint, p, fileKind(fi.Mode()))
	case fi.Size() == 0:
		// simbulk creates its checkpoints itself. An empty file is most
		// likely the main file of a checkpoint copied without its -wal
		// (where, early in a run, every commit is): taking it for a new
		// checkpoint would send every row again.
		return true, fmt.Errorf("%w: %s is empty. If it is a copy of a checkpoint, its commits are in %s-wal, "+
			"which must be copied with it (simbulk checkpoint backup makes safe copies); if you created it, "+
			"remove it and simbulk creates the checkpoint", ErrNotCheckpoint, p, filepath.Base(p))
	}
	f, err := os.Open(p)
	if err != nil {
		return true, fmt.Errorf("open checkpoint %s: %w", p, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteMagic {
		return true, fmt.Errorf("%w: %s is not a SQLite database (left untouched); --db names a checkpoint file that simbulk run created", ErrNotCheckpoint, p)
	}
	return true, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "device"
	}
	return "special file"
}

// Open opens (creating if needed, with owner-only permissions) the
// checkpoint at path and brings its schema up to date. It opens only a
// regular file that is a simbulk checkpoint (or empty), and never changes
// the permissions of a file it did not create.
func Open(p string, opts ...Option) (*Store, error) {
	exists, err := checkFile(p)
	if err != nil {
		return nil, err
	}
	if !exists {
		// Create the file ourselves so it is owner-only from its first
		// byte: it holds customer data. SQLite gives the -wal and -shm
		// files the same permissions as the database file. O_EXCL: a file
		// (or symlink) that appeared meanwhile is not ours to take.
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create checkpoint %s: %w", p, err)
		}
		f.Close()
	} else if err := isOurs(p); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_txlock", "immediate")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL") // with WAL: durable at each commit's checkpoint, no fsync per commit
	// Each connection keeps its statements prepared: the engine runs the
	// same few (claims, leases, counts) many times a second.
	q.Set("_stmt_cache_size", "64")
	w, err := sql.Open("sqlite3", "file:"+p+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open checkpoint %s: %w", p, err)
	}
	w.SetMaxOpenConns(1)
	q.Set("mode", "ro")
	q.Del("_txlock")
	r, err := sql.Open("sqlite3", "file:"+p+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open checkpoint %s: %w", p, err)
	}
	r.SetMaxOpenConns(4)
	c := &Store{path: p, writeDB: w, read: r, now: time.Now, ops: make(chan writeOp, 1024), stopped: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	if err := c.migrate(); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open checkpoint %s: %w", p, err)
	}
	if err := c.prepareWrites(); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open checkpoint %s: %w", p, err)
	}
	go c.writer()
	return c, nil
}

// isOurs refuses a SQLite database that holds tables but not simbulk's:
// migrating it would write simbulk's schema into somebody else's data.
// It looks through a plain read-only connection, before the checkpoint's
// own connections switch the file to WAL.
func isOurs(p string) error {
	// Before any connection: opening one creates the -wal file.
	lostLog := walWithoutLog(p)
	tables, ours, err := countTables(p, false)
	if err != nil {
		// A WAL database SQLite may not write the -shm of (a read-only
		// file or directory): read the file as it stands.
		tables, ours, err = countTables(p, true)
	}
	if err != nil {
		return fmt.Errorf("%w: %s cannot be read as a SQLite database (%v)", ErrNotCheckpoint, p, err)
	}
	if tables > 0 && ours < 3 {
		return fmt.Errorf("%w: %s is a SQLite database of something else (left untouched)", ErrNotCheckpoint, p)
	}
	if tables == 0 && lostLog {
		return fmt.Errorf("%w: %s is a checkpoint whose commits are all in its -wal file, which is not beside it "+
			"(a copy of the main file alone?); copy %s-wal with it, or make copies with simbulk checkpoint backup. "+
			"Using it would send every row again", ErrNotCheckpoint, p, filepath.Base(p))
	}
	return nil
}

// countTables counts the tables of the database at p, and simbulk's among
// them, through a plain read-only connection.
func countTables(p string, immutable bool) (tables, ours int, err error) {
	q := "?mode=ro"
	if immutable {
		q += "&immutable=1"
	}
	db, err := sql.Open("sqlite3", "file:"+p+q)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	err = db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE name IN ('runs', 'rows', 'attempts'))
		FROM sqlite_schema WHERE type = 'table'`).Scan(&tables, &ours)
	return tables, ours, err
}

// walWithoutLog reports whether p is a SQLite file in WAL mode (header
// bytes 18-19 are 2) with no -wal file beside it. simbulk creates its
// checkpoints empty and in WAL mode, so one with no tables and no -wal is
// the main file of a checkpoint copied without its log.
func walWithoutLog(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 20)
	if _, err := io.ReadFull(f, head); err != nil || head[18] != 2 || head[19] != 2 {
		return false
	}
	_, err = os.Stat(p + "-wal")
	return errors.Is(err, fs.ErrNotExist)
}

// migrate applies the embedded migrations not yet recorded in
// user_version, each in its own transaction.
func (c *Store) migrate() error {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var version int
	if err := c.writeDB.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("checkpoint schema version %d is newer than this simbulk knows (%d): upgrade simbulk", version, len(names))
	}
	for i := version; i < len(names); i++ {
		body, err := migrations.ReadFile(path.Join("migrations", names[i]))
		if err != nil {
			return err
		}
		tx, err := c.writeDB.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
		if _, err := tx.Exec("PRAGMA user_version = " + strconv.Itoa(i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
	}
	return nil
}

// writer owns the write connection: it takes whatever writes are queued
// (up to maxGroup), applies them in one transaction, commits, and only then
// tells each waiting caller. A failed write fails the whole group, and
// every caller in it hears so.
//
// While writes come from many callers at once (the last group had more
// than one), it lingers a moment for more before committing: a commit
// writes every page it changed to the log, so twenty rows' intents in one
// commit cost little more than one. A lone caller writing in turn (a
// manifest load) never waits.
func (c *Store) writer() {
	defer close(c.stopped)
	var group []writeOp
	// Stopped until a group lingers; since Go 1.23 a stopped or reset
	// timer delivers nothing stale.
	linger := time.NewTimer(groupLinger)
	linger.Stop()
	last := 0 // the last group's size
	for op := range c.ops {
		var open bool
		group, open = c.gather(append(group[:0], op), nil)
		if open && last > 1 {
			linger.Reset(groupLinger)
			group, _ = c.gather(group, linger.C)
			linger.Stop()
		}
		last = len(group)
		err := c.commit(group)
		for _, g := range group {
			g.done <- err
		}
		clear(group)
	}
}

// gather adds queued writes to group, up to maxGroup: those waiting now
// or, with until, those that come before it fires. It reports whether
// the queue is still open.
func (c *Store) gather(group []writeOp, until <-chan time.Time) ([]writeOp, bool) {
	for len(group) < maxGroup {
		var more writeOp
		var ok bool
		if until == nil {
			select {
			case more, ok = <-c.ops:
			default:
				return group, true
			}
		} else {
			select {
			case more, ok = <-c.ops:
			case <-until:
				return group, true
			}
		}
		if !ok {
			return group, false
		}
		group = append(group, more)
	}
	return group, true
}

// groupLinger is how long the writer waits for more writes to commit
// together, while several callers write at once: well below a provider's
// answer, which a sender waits for meanwhile with its next intent queued.
const groupLinger = 500 * time.Microsecond

func (c *Store) commit(group []writeOp) error {
	tx, err := c.writeDB.Begin()
	if err != nil {
		return fmt.Errorf("checkpoint: begin: %w", err)
	}
	for _, g := range group {
		if err := g.apply(tx); err != nil {
			tx.Rollback()
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("checkpoint: commit: %w", err)
	}
	return nil
}

// errClosed is returned by writes after Close.
var errClosed = errors.New("checkpoint is closed")

// write applies fn in the writer's next transaction and returns once it is
// committed (durable): intents go through here before their requests leave.
func (c *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	done := make(chan error, 1)
	if err := c.enqueue(writeOp{apply: fn, done: done}); err != nil {
		return err
	}
	// Once queued, the write will happen; wait for it even if ctx ends, so
	// the caller never acts on a state that may not be recorded.
	return <-done
}

func (c *Store) enqueue(op writeOp) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return errClosed
	}
	if c.writeDB == nil {
		return pipeline.ErrReadOnly
	}
	c.ops <- op
	return nil
}

// prepareInserts returns the checkpoint's INSERTs of plain rows (see
// groupInserts), preparing them at the first call.
func (c *Store) prepareInserts() (*[groupSizes]*sql.Stmt, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, errClosed
	}
	if c.writeDB == nil {
		return nil, pipeline.ErrReadOnly
	}
	return c.inserts.prepared(c.writeDB)
}

// Path is the checkpoint file's path.
func (c *Store) Path() string { return c.path }

// Close commits what is queued and closes the file.
func (c *Store) Close() error {
	var err error
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		close(c.ops)
		c.mu.Unlock()
		<-c.stopped
		err = errors.Join(c.inserts.close(), c.read.Close())
		if c.writeDB != nil {
			err = errors.Join(err, c.writeDB.Close())
		}
	})
	return err
}

// OpenReadOnly opens an existing checkpoint for reading only, as
// status and report need: it works on a checkpoint the user may read but
// not write (a copy handed over, a file on a read-only mount), and it
// writes nothing, schema upgrades included.
func OpenReadOnly(p string) (*Store, error) {
	exists, err := checkFile(p)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("%w at %s: simbulk run creates it; --db names another", ErrNoCheckpoint, p)
	}
	if err := isOurs(p); err != nil {
		return nil, err
	}
	r, err := openReadPool(p, false)
	if err == nil {
		err = checkSchema(r, p)
		if err != nil {
			// A WAL file SQLite may not create its -shm beside (a
			// read-only directory): read the file as it stands instead.
			r.Close()
			if r, err = openReadPool(p, true); err == nil {
				err = checkSchema(r, p)
			}
		}
	}
	if err != nil {
		if r != nil {
			r.Close()
		}
		return nil, err
	}
	c := &Store{path: p, read: r, now: time.Now, ops: make(chan writeOp), stopped: make(chan struct{})}
	close(c.stopped) // no writer goroutine
	return c, nil
}

func openReadPool(p string, immutable bool) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", "10000")
	if immutable {
		q.Set("immutable", "1")
	}
	r, err := sql.Open("sqlite3", "file:"+p+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open checkpoint %s: %w", p, err)
	}
	r.SetMaxOpenConns(4)
	return r, nil
}

// checkSchema makes sure a checkpoint opened read-only has the schema this
// simbulk reads: it cannot upgrade one.
func checkSchema(r *sql.DB, p string) error {
	var version int
	if err := r.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("open checkpoint %s: %w", p, err)
	}
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return err
	}
	switch {
	case version > len(entries):
		return fmt.Errorf("checkpoint %s has schema version %d, newer than this simbulk knows (%d): upgrade simbulk", p, version, len(entries))
	case version < len(entries):
		return fmt.Errorf("checkpoint %s has an older schema (version %d of %d); a command that writes (simbulk resume) upgrades it, or read it with the simbulk that wrote it", p, version, len(entries))
	}
	return nil
}

// Backup writes a consistent copy of the checkpoint to dest, a new
// owner-only file, while runs may be writing to it: VACUUM INTO reads one
// snapshot of the database, WAL included. Copying the file alone is not
// safe: the last commits may still be in the -wal file beside it, and a
// copy without them resends rows whose intents it lost.
func (c *Store) Backup(ctx context.Context, dest string) error {
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("back up checkpoint to %s: %w", dest, err)
	}
	f.Close()
	if _, err := c.read.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		os.Remove(dest)
		return fmt.Errorf("back up checkpoint to %s: %w", dest, err)
	}
	return nil
}
