// Package pgtest gives tests a real PostgreSQL server: a throwaway cluster
// that initdb creates in a temporary directory, started on a free port with
// its unix socket beside its data, and removed when the tests end. Each
// test gets a database of its own on it, so tests neither see nor wait for
// each other's rows.
//
// The server binaries are Debian's (/usr/lib/postgresql/VERSION/bin, the
// newest first) or whatever initdb and postgres are on PATH. PostgreSQL
// refuses to run as root, so under root the cluster belongs to nobody.
// When no server can be found the tests skip, except under CI=true, where
// they must run and fail instead.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir  string // owns data/ and the socket
	bin  string
	cred *syscall.Credential // who the server runs as (nil: this user)
	port int
	cmd  *exec.Cmd
	// exited is closed when the server process has ended.
	exited chan struct{}
	dbs    atomic.Int64
}

// shared is the test binary's cluster, started by the first test that asks
// and stopped by Main: one initdb per package rather than per test.
var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Main runs the package's tests and then stops the cluster they shared.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.c != nil {
		shared.c.Stop()
	}
	os.Exit(code)
}

// DB returns the connection string of a new, empty database on the
// package's shared cluster, starting the cluster on first use. Without a
// PostgreSQL server the test skips, or fails under CI=true.
func DB(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() { shared.c, shared.err = Start() })
	if shared.err != nil {
		Unavailable(t, shared.err)
	}
	return shared.c.NewDB(t)
}

// New starts a cluster of the test's own, stopped when the test ends: for
// tests that stop or restart the server, or whose package's TestMain
// cannot call Main. Without a PostgreSQL server the test skips, or fails
// under CI=true.
func New(t testing.TB) *Cluster {
	t.Helper()
	c, err := Start()
	if err != nil {
		Unavailable(t, err)
	}
	t.Cleanup(c.Stop)
	return c
}

// Unavailable ends a test that needs PostgreSQL and cannot have it: a skip
// on a workstation, a failure under CI=true, where every test must run.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL is required under CI=true: %v", err)
	}
	t.Skipf("PostgreSQL tests skipped: %v (apt-get install postgresql, or make postgresql)", err)
}

// ErrNoServer means no PostgreSQL server binaries were found.
var ErrNoServer = errors.New("no PostgreSQL server binaries (initdb, postgres) in /usr/lib/postgresql/*/bin or on PATH")

// binDir finds the directory holding initdb and postgres: Debian's
// newest version, else PATH.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		return "", ErrNoServer
	}
	d := filepath.Dir(initdb)
	if !isExec(filepath.Join(d, "postgres")) {
		return "", ErrNoServer
	}
	return d, nil
}

// version is the major version in a Debian bin directory's path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start creates and starts a cluster. Stop removes it.
func Start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "simbulk-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin}
	if c.cred, err = serverUser(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if c.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.Up(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Up starts the server (again, after Down) and waits until it answers.
func (c *Cluster) Up() error {
	// Durability is not what these tests check; fsync off keeps a
	// throwaway cluster quick on a shared machine.
	c.cmd = exec.Command(filepath.Join(c.bin, "postgres"), "-D", filepath.Join(c.dir, "data"), "-p", strconv.Itoa(c.port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	// Pdeathsig: a test binary killed by a timeout takes its server with it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	c.cmd.Dir = c.dir
	log, err := os.OpenFile(filepath.Join(c.dir, "server.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if c.cred != nil {
		_ = log.Chown(int(c.cred.Uid), int(c.cred.Gid))
	}
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	c.exited = exited
	go func() { _ = c.cmd.Wait(); log.Close(); close(exited) }()
	return c.waitReady(30 * time.Second)
}

// Down shuts the server down (fast shutdown: every connection is cut),
// keeping its data for Up.
func (c *Cluster) Down() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
}

// serverUser is who the server runs as: this user, or nobody when this
// is root (PostgreSQL refuses root), who is then given dir.
func serverUser(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := pgx.Connect(context.Background(), c.ConnString("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
			return fmt.Errorf("postgres exited at start: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %s: %w", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ConnString is a postgres:// URL of database db over the cluster's unix
// socket: the form simbulk's --db takes.
func (c *Cluster) ConnString(db string) string {
	q := url.Values{"host": {c.dir}, "port": {strconv.Itoa(c.port)}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + db + "?" + q.Encode()
}

// CreateDB creates an empty database and returns its name and
// connection string.
func (c *Cluster) CreateDB() (name, connString string, err error) {
	name = fmt.Sprintf("t%d_%d", os.Getpid(), c.dbs.Add(1))
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		return "", "", fmt.Errorf("connect to the test cluster: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", "", fmt.Errorf("create test database: %w", err)
	}
	return name, c.ConnString(name), nil
}

// NewDB creates an empty database and returns its connection string. It
// is dropped when the test ends.
func (c *Cluster) NewDB(t testing.TB) string {
	t.Helper()
	name, dsn, err := c.CreateDB()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		admin, err := pgx.Connect(ctx, c.ConnString("postgres"))
		if err != nil {
			return // the cluster is gone; its directory goes with it
		}
		defer admin.Close(ctx)
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return dsn
}

// Stop shuts the server down and removes its directory.
func (c *Cluster) Stop() {
	c.Down()
	os.RemoveAll(c.dir)
}
