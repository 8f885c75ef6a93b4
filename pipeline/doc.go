// Package pipeline runs a rollout: it streams a validated manifest into a
// SQLite checkpoint, fans rows out to provider clients with bounded
// workers, per-provider rate limits, retries and batching, learns the
// completion of accepted work, and resumes an interrupted run exactly where
// it stopped without sending any provider the same request twice.
//
// The pipeline knows rows, states and outcomes; it never sees a provider's
// wire format. Providers are reached through the small Provider interface
// declared here, which the clients in providers/* satisfy.
package pipeline
