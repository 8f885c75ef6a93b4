//go:build race

package ingest

// hostileScale divides the hostile manifests' sizes: the race detector
// slows every byte loop several times, and the bounds do not depend on
// the size anyway.
const hostileScale = 10
