package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Commands watch ctx so that Ctrl-C or a service manager's SIGTERM ends
	// them at a row boundary, with state saved, instead of mid-write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
