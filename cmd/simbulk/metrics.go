package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/simbulk/simbulk/pipeline"
	"github.com/simbulk/simbulk/pipeline/metrics"
)

// MetricsConfig is the config file's metrics block.
type MetricsConfig struct {
	// Addr serves /metrics there while run, resume, retry-failed and
	// reconcile work; --metrics-addr overrides it.
	Addr string `yaml:"addr"`
}

// metricsListenAddr is where --metrics-addr listens. A port alone ("9464"
// or ":9464") means localhost: metrics say which providers a team uses
// and how its rollouts go, so reaching them from other hosts is a choice
// made by naming a host ("0.0.0.0:9464").
func metricsListenAddr(addr string) (string, error) {
	if p, err := strconv.Atoi(strings.TrimPrefix(addr, ":")); err == nil && p >= 0 && p <= 65535 {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: want HOST:PORT or a port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// serveMetrics serves cp's metrics at /metrics on addr (the flag's, else
// the config's; "" serves none) while the command runs. It logs the
// address it listens on, which says the port when addr asked for any
// (":0"). The Metrics it returns is nil when none are served; stop closes
// the listener at once, since a command must end promptly on a signal.
func (a *app) serveMetrics(addr string, cp pipeline.Store) (m *metrics.Metrics, stop func(), err error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	listen, err := metricsListenAddr(addr)
	if err != nil {
		return nil, nil, usageError(err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, fmt.Errorf("serve metrics: %w", err)
	}
	m = metrics.New(cp)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger().Warn("metrics server stopped", "error", err.Error())
		}
	}()
	a.logger().Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return m, func() { _ = srv.Close() }, nil
}

// metricsAddr is --metrics-addr, else the config's metrics.addr.
func metricsAddr(flag string, cfg *Config) string {
	if flag != "" || cfg == nil {
		return flag
	}
	return cfg.Metrics.Addr
}
