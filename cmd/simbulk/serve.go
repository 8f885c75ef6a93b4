package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/simbulk/simbulk/cmd/simbulk/console"
	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/metrics"
	"github.com/simbulk/simbulk/reports"
)

// ConsoleConfig is the config's console block.
type ConsoleConfig struct {
	// Addr is where the console listens (--addr overrides it).
	Addr  string         `yaml:"addr"`
	Users []console.User `yaml:"users"`
	// UserHeader names the header a reverse proxy sets to the
	// authenticated user; it is believed only from TrustedProxies.
	UserHeader     string   `yaml:"user_header"`
	TrustedProxies []string `yaml:"trusted_proxies"`
	UploadLimitMiB int64    `yaml:"upload_limit_mib"`
	TLS            struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
}

// defaultConsoleAddr keeps the console to this machine unless told
// otherwise.
const defaultConsoleAddr = "127.0.0.1:8080"

type serveOptions struct {
	rolloutOptions
	addr           string
	data           string
	uploadLimitMiB int64
}

func (a *app) serveCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the web console: upload manifests, see their problems, start and watch rollouts",
		Long: `Serve the web console over the same checkpoint (--db) and reports (--out) the
command line uses. Logistics teams log in, upload a CSV or XLSX manifest, read
its problems row by row, confirm the plan and watch the rollout live; they can
stop, resume and retry it, reconcile it, and download its reports. A run the
command line drives on the same checkpoint shows up and updates too; the
checkpoint lock decides who drives a run, never both.

Users come from the config (console.users: name and password_hash; make a hash
with simbulk serve hash-password). With --simulate and no config, a user
"demo" is made with a one-time password printed at start.

The console listens on 127.0.0.1:8080 unless --addr or console.addr says
otherwise, and serves TLS with console.tls.cert and key. SIGTERM or Ctrl-C
stops it gracefully: a running rollout stops as after Ctrl-C on the command
line, resumable.`,
		Example: `  # Against the built-in simulators, for a first look
  simbulk serve --simulate

  # For real, with users and providers from the config
  simbulk serve --config simbulk.yaml --db /var/lib/simbulk/simbulk.db --data /var/lib/simbulk/console

  # Make a password hash for console.users
  simbulk serve hash-password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "config `FILE` (simbulk.yaml): providers, and the console block: users, TLS, upload limit")
	f.StringVar(&o.simulate, "simulate", "", "provision against the built-in simulators in-process, with fault `PROFILE` ok|flaky|slow|ratelimited")
	f.Lookup("simulate").NoOptDefVal = "ok"
	addDBFlag(cmd, &o.db)
	f.DurationVar(&o.lease, "lease", pipeline.DefaultLeaseTTL, "PostgreSQL: how long a worker's rows stay its own without renewal")
	f.StringVar(&o.out, "out", reports.DefaultDir, "`DIR` for the reports; each run gets DIR/<run-id>/")
	f.StringVar(&o.addr, "addr", "", "listen `ADDRESS` (default "+defaultConsoleAddr+", or console.addr)")
	f.StringVar(&o.data, "data", "simbulk-console", "`DIR` for uploads and the action log (created owner-only)")
	f.Int64Var(&o.uploadLimitMiB, "upload-limit-mib", 0, "largest upload in `MiB` (default console.upload_limit_mib, else 100)")
	f.IntVar(&o.concurrency, "concurrency", 0, "workers per provider (overrides the config)")
	f.DurationVar(&o.asyncDelay, "sim-async-delay", 300*time.Millisecond, "with --simulate: how long the simulators take to complete accepted work")
	_ = f.MarkHidden("sim-async-delay")
	f.StringVar(&o.simForms, "sim-forms", "documented", "with --simulate: the simulators' wire `FORMS`, documented or alternate")
	cmd.AddCommand(a.hashPasswordCommand())
	return cmd
}

func (a *app) hashPasswordCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "hash-password",
		Short: "Print a bcrypt hash of a password for console.users in the config",
		Long: `Read a password (asked twice on a terminal, without echo; otherwise the first
line of standard input) and print its bcrypt hash, for the password_hash of a
user in the config's console.users.`,
		Example: `  simbulk serve hash-password
  printf '%s\n' "$PASSWORD" | simbulk serve hash-password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			password, err := a.readPassword()
			if err != nil {
				return err
			}
			hash, err := console.HashPassword(password)
			if err != nil {
				return usageError(err)
			}
			fmt.Fprintln(a.stdout, hash)
			return nil
		},
	}
}

func (a *app) readPassword() (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(a.stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", usageError(errors.New("the passwords differ"))
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", usageError(errors.New("no password on standard input"))
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// consoleOptions turns the config's console block into the console's
// options; with --simulate and no users it makes the one-time demo user.
func (a *app) consoleOptions(cfg *Config, simulated bool) (console.Options, string, error) {
	c := cfg.Console
	o := console.Options{Users: c.Users, UploadLimit: c.UploadLimitMiB << 20, Secure: c.TLS.Cert != ""}
	if c.UserHeader != "" {
		o.Proxy.Header = c.UserHeader
		for _, p := range c.TrustedProxies {
			pfx, err := netip.ParsePrefix(p)
			if err != nil {
				addr, aerr := netip.ParseAddr(p)
				if aerr != nil {
					return o, "", fmt.Errorf("console.trusted_proxies: %q is not an address or a CIDR prefix", p)
				}
				pfx = netip.PrefixFrom(addr, addr.BitLen())
			}
			o.Proxy.Trusted = append(o.Proxy.Trusted, pfx)
		}
		if len(o.Proxy.Trusted) == 0 {
			return o, "", errors.New("console.user_header needs console.trusted_proxies: the addresses of the proxies that set it")
		}
	}
	var demoPassword string
	if len(o.Users) == 0 && o.Proxy.Header == "" {
		if !simulated {
			return o, "", errors.New("no console users: add console.users to the config (name, and a password_hash from simbulk serve hash-password)")
		}
		demoPassword = strings.ToLower(rand.Text()[:12])
		hash, err := console.HashPassword(demoPassword)
		if err != nil {
			return o, "", err
		}
		o.Users = []console.User{{Name: "demo", PasswordHash: hash}}
	}
	return o, demoPassword, nil
}

func (a *app) serve(ctx context.Context, o serveOptions) error {
	if err := checkConcurrency(o.concurrency); err != nil {
		return err
	}
	cfg, stopSims, err := a.rolloutConfig(o.rolloutOptions)
	if err != nil {
		return err
	}
	defer stopSims()
	copts, demoPassword, err := a.consoleOptions(cfg, o.simulate != "")
	if err != nil {
		return err
	}
	if o.uploadLimitMiB < 0 {
		return usageError(fmt.Errorf("--upload-limit-mib %d: want a positive size", o.uploadLimitMiB))
	}
	if o.uploadLimitMiB > 0 {
		copts.UploadLimit = o.uploadLimitMiB << 20
	}
	addr := cmp.Or(o.addr, cfg.Console.Addr, defaultConsoleAddr)
	srv, closeConsole, err := a.consoleServer(ctx, cfg, o, copts)
	if err != nil {
		return err
	}
	defer closeConsole()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if cfg.Console.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Console.TLS.Cert, cfg.Console.TLS.Key)
		if err != nil {
			ln.Close()
			return fmt.Errorf("console.tls: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, hs.TLSConfig)
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String()
	log := a.logger()
	attrs := []any{"url", url, "reports", o.out, "data", o.data}
	if o.simulate != "" {
		attrs = append(attrs, "simulated", o.simulate)
	}
	log.Info("console listening", attrs...)
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && !ap.Addr().IsLoopback() && scheme == "http" {
		log.Warn("the console is reachable from other machines without TLS: set console.tls, or put it behind a TLS proxy")
	}
	if demoPassword != "" {
		fmt.Fprintf(a.stderr, "\nOpen %s and log in as demo with the one-time password %s\n\n", url, demoPassword)
	}

	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	log.Info("console stopping: a running rollout stops gracefully and stays resumable")
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	jobsErr := srv.Shutdown(stopCtx)
	// Event streams never end on their own; give them a moment, then
	// close what is left.
	shutCtx, cancelShut := context.WithTimeout(stopCtx, 2*time.Second)
	defer cancelShut()
	if err := hs.Shutdown(shutCtx); err != nil {
		hs.Close()
	}
	// Stopped as asked (systemd's stop, Ctrl-C): exit 0; any rollout is
	// recorded as interrupted and resumes from the console or the CLI.
	return jobsErr
}

// consoleServer is the console over the checkpoint o.db (or SIMBULK_DB,
// or the config's checkpoint:) with the lanes of cfg; closeConsole closes
// the checkpoint once the console has stopped.
func (a *app) consoleServer(ctx context.Context, cfg *Config, o serveOptions, copts console.Options) (srv *console.Server, closeConsole func(), err error) {
	db := checkpointAt(o.db, cfg)
	cp, err := openCheckpoint(ctx, db, openOrCreate)
	if err != nil {
		return nil, nil, err
	}
	// The console waits for nobody: while another simbulk holds a SQLite
	// checkpoint, it says so at once. On PostgreSQL it joins runs as any
	// worker does.
	svc := a.rolloutService(cp, db, cfg, o.concurrency, 0, o.lease)
	copts.Service, copts.ReportsDir, copts.DataDir, copts.Logger = svc, o.out, o.data, a.logger()
	copts.Shared = shared(cp)
	if !copts.Shared {
		copts.Busy = func() bool { return checkpointBusy(db) }
	}
	copts.Metrics = metrics.New(cp)
	if srv, err = console.New(copts); err != nil {
		cp.Close()
		return nil, nil, err
	}
	a.logger().Info("console checkpoint", "checkpoint", checkpointName(db))
	return srv, func() { cp.Close() }, nil
}

// checkpointBusy reports whether some process holds the SQLite
// checkpoint's lock (for the console: whether the command line drives a
// run now). It takes the lock and lets it go at once.
func checkpointBusy(db string) bool {
	unlock, err := lockFile(db, 0)
	if err != nil {
		return true
	}
	unlock()
	return false
}
