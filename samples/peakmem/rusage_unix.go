//go:build unix

package peakmem

import (
	"runtime"
	"syscall"
)

// maxRSS is getrusage's peak, where /proc is missing (macOS, the BSDs).
func maxRSS() uint64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return uint64(ru.Maxrss) // bytes on macOS
	}
	return uint64(ru.Maxrss) * 1024 // KiB on the BSDs
}
