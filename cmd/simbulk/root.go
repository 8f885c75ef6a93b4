package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/simbulk/simbulk/providers/simkit"
)

// app is what every subcommand shares: the process's streams and the
// settings of the persistent flags. Tests build one per run, so nothing
// here is global.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	logFormat string
	log       *slog.Logger
}

// run executes the command line args and returns the process exit code.
// It is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		// A panic is a bug, never a usage error: say so, exit 1. The
		// checkpoint holds every intent, so the same command resumes.
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "simbulk: internal error: %v\n%s\nsimbulk: this is a bug; the checkpoint is safe and the same command resumes\n", p, debug.Stack())
			code = exitFatal
		}
	}()
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, logFormat: "text"}
	root := a.rootCommand()
	root.SetArgs(simulateProfileArgs(args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Every command's own errors carry a code (see fatalByDefault), so
		// this one is cobra's: unknown command, flag or argument count.
		ee = &exitError{code: exitUsage, err: err}
	}
	if ee.err != nil {
		fmt.Fprintf(stderr, "simbulk: %s\n", ee.err)
	}
	if ee.code == exitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ee.code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "simbulk",
		Short: "Provision SIMs and eSIMs in bulk from device manifests",
		Long: `simbulk provisions SIMs and eSIMs in bulk. It reads a CSV or XLSX manifest of
device identifiers (EID, ICCID, CLI, IMEI), checks every row, and sends the
valid ones to Telenor IoT Connect, Asavie PassBridge or Verizon ThingSpace.

Exit codes: 0 every row ok, 1 fatal error, 2 usage error, 3 finished with some
rows invalid or failed, 4 stopped at the failure threshold, 130 interrupted.`,
		Example: `  # Check a manifest before sending anything
  simbulk validate devices.csv

  # A one-provider export without a provider column, second sheet
  simbulk validate sims.xlsx --provider asavie --sheet "March batch"

  # Machine-readable problems for a script
  simbulk validate devices.csv --json`,
		Args: unknownCommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError(errors.New("missing command"))
		},
		// run prints errors and the usage hint once, as one line each.
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		CompletionOptions:          cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	// The root runs only to say a command is missing; its usage should not
	// offer "simbulk [flags]" as if it did something on its own.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"Usage:{{if .Runnable}}", "Usage:{{if and .Runnable .HasParent}}", 1))
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.PersistentFlags().Var(newChoice(&a.logFormat, "text", "json"), "log-format",
		"write log lines on stderr as `text|json`; json suits cron and log collectors")

	root.AddCommand(
		a.validateCommand(),
		a.runCommand(),
		a.resumeCommand(),
		a.statusCommand(),
		a.retryFailedCommand(),
		a.reportCommand(),
		a.reconcileCommand(),
		a.checkpointCommand(),
		a.serveCommand(),
		a.simCommand(),
		a.versionCommand(),
	)
	codeErrors(root)
	return root
}

// codeErrors makes the errors of c and every command below it carry an
// exit code (see fatalByDefault), including nested ones like "sim serve".
func codeErrors(c *cobra.Command) {
	if f := c.RunE; f != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error { return fatalByDefault(f(cmd, args)) }
	}
	for _, sub := range c.Commands() {
		codeErrors(sub)
	}
}

// unknownCommand rejects stray words after "simbulk", suggesting the
// command the user probably meant.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usageError(errors.New(msg))
}

// argNames makes a command take exactly the named positional arguments,
// with a message that names what is missing rather than counting.
func argNames(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usageError(fmt.Errorf("%s needs %s", cmd.Name(), strings.Join(names[len(args):], " ")))
		case len(args) > len(names) && len(names) == 0:
			return usageError(fmt.Errorf("%s takes no arguments; unexpected %q", cmd.Name(), args[0]))
		case len(args) > len(names):
			return usageError(fmt.Errorf("%s takes only %s; unexpected %q",
				cmd.Name(), strings.Join(names, " "), args[len(names)]))
		}
		return nil
	}
}

// logger returns the structured logger for stderr in the --log-format the
// user chose. It is built on first use, after flags are parsed.
func (a *app) logger() *slog.Logger {
	if a.log == nil {
		var h slog.Handler
		if a.logFormat == "json" {
			h = slog.NewJSONHandler(a.stderr, nil)
		} else {
			h = slog.NewTextHandler(a.stderr, nil)
		}
		a.log = slog.New(h)
	}
	return a.log
}

// addMetricsFlag gives a command that talks to providers its
// --metrics-addr flag (run, resume, retry-failed, reconcile).
func addMetricsFlag(cmd *cobra.Command, addr *string) {
	cmd.Flags().StringVar(addr, "metrics-addr", "", "serve Prometheus metrics at http://`ADDR`/metrics while the command runs (a port alone listens on localhost; default: the config's metrics.addr, else none)")
}

// addDBFlag gives a command that touches the checkpoint its --db flag
// (run, resume, status, retry-failed, report, reconcile). Only those opt
// in, so help for the others does not suggest they keep state. Empty
// means SIMBULK_DB, the config's checkpoint:, or simbulk.db
// (checkpointAt).
func addDBFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "db", "", "checkpoint that records every row's state: a SQLite `FILE`, or a postgres:// URL "+
		"(default: $SIMBULK_DB, the config's checkpoint:, or "+defaultCheckpoint+")")
}

// choice is a flag value restricted to a fixed set. A wrong value fails
// flag parsing, so it is a usage error that names the allowed values.
type choice struct {
	value   *string
	allowed []string
}

func newChoice(value *string, allowed ...string) *choice {
	return &choice{value: value, allowed: allowed}
}

func (c *choice) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	if !slices.Contains(c.allowed, s) {
		return fmt.Errorf("must be one of %s", strings.Join(c.allowed, ", "))
	}
	*c.value = s
	return nil
}

func (c *choice) String() string { return *c.value }
func (c *choice) Type() string   { return "string" }

// simulateProfileArgs lets `--simulate PROFILE` work as written in the
// help and the contract. pflag gives a flag with an optional value its
// value only as --simulate=PROFILE; a bare --simulate followed by a
// profile name would leave the name among the positional arguments (and
// `simbulk run devices.csv --simulate flaky` would fail as "unexpected
// flaky"). The name is joined to the flag unless a file of that name
// exists, which is then the manifest it looks like.
func simulateProfileArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "--simulate" && i+1 < len(args) {
			next := args[i+1]
			if _, err := simkit.Profile(next); err == nil && next != "" {
				if _, err := os.Stat(next); err != nil {
					out = append(out, "--simulate="+next)
					i++
					continue
				}
			}
		}
		out = append(out, a)
	}
	return out
}
