package pipeline_test

import (
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/sqlite"
)

// The engine's tests (package pipeline) run against the SQLite store, which
// they cannot import themselves: it imports pipeline.
func init() {
	pipeline.SetTestStore(func(path string) (pipeline.Store, error) { return sqlite.Open(path) })
}
