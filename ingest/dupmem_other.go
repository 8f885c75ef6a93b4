//go:build !(linux || darwin || freebsd)

package ingest

// mapMemory: this system's tables stay on the Go heap.
func mapMemory(int) []byte { return nil }

func unmapMemory([]byte) {}
