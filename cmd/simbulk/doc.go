// Command simbulk provisions SIMs and eSIMs in bulk from device manifests
// (CSV or XLSX): it validates every row, sends the valid ones to the
// provider APIs (Telenor IoT Connect, Asavie PassBridge, Verizon
// ThingSpace), checkpoints every row so an interrupted rollout resumes
// without re-sending anything, and reports per row.
//
// This package is only the command line: it parses flags, wires the
// packages that do the work (ingest, pipeline, providers, reports) and turns
// outcomes into exit codes that a script or cron job can act on (see
// exitcodes.go). Each subcommand lives in its own file. run, resume,
// retry-failed, reconcile and the dry run call the rollout service
// (pipeline/rollout) with the checkpoint, lanes built from the config
// (lanes.go), the checkpoint lock and the logger, and render its events
// as the progress bar or log lines (watch.go).
package main
