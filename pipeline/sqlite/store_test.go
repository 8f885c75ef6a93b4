package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
	"github.com/simbulk/simbulk/pipeline/storetest"
)

// TestStore: the SQLite store keeps pipeline.Store's contract.
func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Stores{
		New: func(t *testing.T) pipeline.Store {
			s, err := sqlite.Open(filepath.Join(t.TempDir(), "simbulk.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		ReadOnly: func(t *testing.T, s pipeline.Store) pipeline.Store {
			p := s.(*sqlite.Store).Path()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			ro, err := sqlite.OpenReadOnly(p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ro.Close() })
			return ro
		},
	})
}
