// Package peakmem measures the peak memory of the running process (resident
// set and Go heap), for the benchmarks and memory tests that run on the
// generated samples.
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
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"
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

// HeapSampler records the largest Go heap seen while it runs. Reading
// runtime/metrics does not stop the world, so sampling every few
// milliseconds barely disturbs what is being timed.
type HeapSampler struct {
	done     chan struct{}
	wg       sync.WaitGroup
	peak     uint64 // heap objects, live or not yet swept
	peakLive uint64 // the live heap the last GC found
	onLive   func()
}

// StartHeapSampler samples every period until Stop. onLive, if not nil,
// is called (on the sampler's goroutine) whenever the live heap reaches a
// new peak: the moment for a heap profile of what is held at the most.
func StartHeapSampler(every time.Duration, onLive func()) *HeapSampler {
	s := &HeapSampler{done: make(chan struct{}), onLive: onLive}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			metrics.Read(sample)
			s.peak = max(s.peak, sample[0].Value.Uint64())
			if live := sample[1].Value.Uint64(); live > s.peakLive {
				s.peakLive = live
				if s.onLive != nil {
					s.onLive()
				}
			}
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the peak heap (objects, in bytes).
func (s *HeapSampler) Stop() uint64 {
	close(s.done)
	s.wg.Wait()
	return s.peak
}

// PeakLive is the largest live heap a collection found; read it after Stop.
func (s *HeapSampler) PeakLive() uint64 { return s.peakLive }

// MiB formats a byte count for a benchmark's report: "12.3 MiB".
func MiB(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
