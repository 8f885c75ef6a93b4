package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/postgres"
	"github.com/simbulk/simbulk/pipeline/postgres/pgtest"
	"github.com/simbulk/simbulk/pipeline/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens a store on a new database, closed when the test ends.
func open(t *testing.T) (*postgres.Store, string) {
	t.Helper()
	dsn := pgtest.DB(t)
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

// TestStore: the PostgreSQL store keeps pipeline.Store's contract.
func TestStore(t *testing.T) {
	dsns := map[pipeline.Store]string{}
	storetest.Run(t, storetest.Stores{
		New: func(t *testing.T) pipeline.Store {
			s, dsn := open(t)
			dsns[s] = dsn
			return s
		},
		ReadOnly: func(t *testing.T, s pipeline.Store) pipeline.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			ro, err := postgres.OpenReadOnly(context.Background(), dsns[s])
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ro.Close() })
			return ro
		},
	})
}

// TestMigrateConcurrently: processes that start together on an empty
// database take turns at the migration lock; every one opens, and the
// schema is applied once.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.DB(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	ro, err := postgres.OpenReadOnly(ctx, dsn)
	if err != nil {
		t.Fatalf("read-only open after migrating: %v", err)
	}
	ro.Close()
}

// TestOpenReadOnlyEmpty: a read-only open of a database simbulk never
// migrated says so rather than reading nothing.
func TestOpenReadOnlyEmpty(t *testing.T) {
	if _, err := postgres.OpenReadOnly(context.Background(), pgtest.DB(t)); err == nil || !strings.Contains(err.Error(), "older schema") {
		t.Errorf("read-only open of an empty database: %v", err)
	}
}

// TestSecretNeverShown: whatever fails, a message never repeats the
// connection string's password.
func TestSecretNeverShown(t *testing.T) {
	for _, dsn := range []string{
		"postgres://simbulk:s3cret-pw@127.0.0.1:1/simbulk?connect_timeout=1",
		"postgres://simbulk@127.0.0.1:1/simbulk?password=s3cret-pw&connect_timeout=1",
		"host=127.0.0.1 port=1 user=simbulk password=s3cret-pw connect_timeout=1",
		"host=127.0.0.1 port=1 password='s3cret-pw' connect_timeout=1",
		"postgres://simbulk:s3cret-pw@127.0.0.1:notaport/simbulk",
	} {
		_, err := postgres.Open(context.Background(), dsn)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%s): %v", postgres.Redact(dsn), err)
		}
		if r := postgres.Redact(dsn); strings.Contains(r, "s3cret") {
			t.Errorf("Redact(%q) = %q", dsn, r)
		}
	}
	if got := postgres.Redact("postgres://u:pw@h/db?sslmode=require"); got != "postgres://u:xxxxx@h/db?sslmode=require" {
		t.Errorf("Redact kept too little or too much: %q", got)
	}
}

// TestCallbacks: a callback result one host keeps is found by another's
// store under any of its keys, the first result under a key stays, and
// providers do not see each other's.
func TestCallbacks(t *testing.T) {
	a, dsn := open(t)
	b, err := postgres.Open(context.Background(), dsn) // another host's
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	if err := a.PutCallback(ctx, "thingspace", []string{"r1|eid|1", "r1|iccid|2"}, []byte(`first`)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutCallback(ctx, "thingspace", []string{"r1|iccid|2"}, []byte(`repeat`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		provider string
		keys     []string
		want     string
	}{
		{"thingspace", []string{"r1|iccid|2"}, "first"},
		{"thingspace", []string{"r9|eid|9", "r1|eid|1"}, "first"},
		{"thingspace", []string{"r2|eid|1"}, ""},
		{"asavie", []string{"r1|eid|1"}, ""},
		{"thingspace", nil, ""},
	} {
		got, found, err := b.Callback(ctx, c.provider, c.keys)
		if err != nil || found != (c.want != "") || string(got) != c.want {
			t.Errorf("Callback(%s, %v) = %q %v %v, want %q", c.provider, c.keys, got, found, err, c.want)
		}
	}
}
