package pipeline

// openStore opens the checkpoint at path for this package's tests. They
// cannot import pipeline/sqlite, which imports pipeline; the external test
// file sqlite_test.go sets it before any test runs.
var openStore func(path string) (Store, error)

// SetTestStore is how sqlite_test.go hands this package's tests the
// SQLite store.
func SetTestStore(open func(path string) (Store, error)) { openStore = open }
