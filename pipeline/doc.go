// Package pipeline runs a rollout: it streams a validated manifest into a
// checkpoint, fans rows out to provider clients with bounded workers,
// per-provider rate limits, retries and batching, learns the completion of
// accepted work, and resumes an interrupted run exactly where it stopped
// without sending any provider the same request twice. It also reconciles
// a finished run with what the providers hold.
//
// The pipeline knows rows, states and outcomes; it never sees a provider's
// wire format. Providers are reached through the small Provider interface
// declared here, which the clients in providers/* satisfy.
//
// Nor does it know how the checkpoint is kept. It reaches it through
// interfaces in the domain's terms (store.go): the engine through
// EngineStore, the reconciler through ReconcileStore, Load through
// LoadStore, the reports through ReportView; Store is all of them. The
// row changes the engine decides are plain values (Transition, Attempt,
// Verdict) that a store persists. pipeline/sqlite (a file, one process
// at a time) and pipeline/postgres (a database that processes on several
// hosts share) are the implementations, and the only places simbulk's SQL
// lives; pipeline/storetest is the contract every implementation must
// pass.
//
// Several processes may drive one run at once: each is a Worker that
// claims rows, which are then leased to it while it renews its lease, and
// shares each provider's rate and pauses with the others (workers.go,
// keepUp in engine.go).
//
// pipeline/rollout puts these together as a service callers use in
// process: find or create the run of a manifest, load it, drive it,
// re-drive its failures, reconcile it, write its reports, and stream
// what happens as events.
package pipeline
