package main

import (
	"context"
	"fmt"
	"github.com/simbulk/simbulk/ingest"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// A Go runtime fatal error (out of memory, a bug) exits 2, the usage
	// code, by default: cron would read a crash as "wrong flags". Abort
	// instead (SIGABRT, shell status 134), without a core file: a core
	// would hold the providers' credentials.
	_ = syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{})
	debug.SetTraceback("crash")
	// Bounded memory for any manifest: the readers' limits keep what is
	// held small, and a soft limit keeps garbage from doubling it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(ingest.MemoryBudget)
	}

	// The first SIGINT/SIGTERM cancels ctx: commands stop taking new work at
	// a row boundary, let requests in flight finish and record everything.
	// A second one exits at once; the checkpoint holds every intent, so the
	// run is still resumable.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "simbulk: second interrupt, exiting now; the run can be resumed")
		os.Exit(exitInterrupted)
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	os.Exit(code)
}
