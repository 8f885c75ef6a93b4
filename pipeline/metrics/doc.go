// Package metrics is simbulk's Prometheus exposition: what rollouts and
// reconciliations are doing, for /metrics on the CLI's --metrics-addr and
// on the web console. It owns a registry of its own (nothing is
// registered globally, so two of them in one process, as tests make, do
// not clash).
//
// Two sources feed it. The engine and the reconciler tell Observe of each
// provider request as its answer comes back (pipeline.Engine.Observe,
// rollout.Options.Observe): requests by operation and status class,
// latencies, 429s and retries, counted in this process. The rows of the
// runs it watches (WatchRun) are read from the checkpoint at scrape time,
// so they never drift from it: a run another process drives shows the
// same numbers as `simbulk status`. Instrument wires both into a
// rollout's options.
//
// It is a package apart so that pipeline stays free of the Prometheus
// dependency; the README's "Metrics" section lists every metric.
package metrics
