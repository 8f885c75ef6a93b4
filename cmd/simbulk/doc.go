// Command simbulk provisions SIMs and eSIMs in bulk from device manifests
// (CSV or XLSX): it validates every row, sends the valid ones to the
// provider APIs (Telenor IoT Connect, Asavie PassBridge, Verizon
// ThingSpace), checkpoints every row so an interrupted rollout resumes
// without re-sending anything, and reports per row.
//
// This package is only the command line: it parses flags, wires the
// packages that do the work (ingest, pipeline, providers, reports) and turns
// outcomes into exit codes that a script or cron job can act on (see
// exitcodes.go). Each subcommand lives in its own file.
package main
