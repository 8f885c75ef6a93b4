//go:build linux || darwin || freebsd

package ingest

import "syscall"

// mapMemory returns size bytes of zeroed memory outside the Go heap, or
// nil when the system will not give them.
func mapMemory(size int) []byte {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	adviseHuge(b)
	return b
}

func unmapMemory(b []byte) { _ = syscall.Munmap(b) }
