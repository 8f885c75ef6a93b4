// Package peakmem reads the peak resident memory of the running process,
// for the benchmarks and memory tests that run on the generated samples.
//
// On Linux it reads VmHWM from /proc/self/status rather than getrusage's
// ru_maxrss: the kernel carries ru_maxrss across exec, and a child started
// by a Go program (os/exec shares the parent's memory until the exec)
// then reports the parent's peak as its own. A benchmark that measures
// each phase in a child of a driver holding a million-row simulator would
// otherwise report the driver.
package peakmem

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// RSS returns the process's peak resident set size in bytes, 0 if the
// system will not say.
func RSS() uint64 {
	if n, ok := vmHWM(); ok {
		return n
	}
	return maxRSS()
}

// vmHWM reads the "VmHWM: N kB" line of /proc/self/status.
func vmHWM() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == "VmHWM:" && string(f[2]) == "kB" {
			kb, err := strconv.ParseUint(string(f[1]), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}
