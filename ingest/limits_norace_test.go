//go:build !race

package ingest

// hostileScale divides the hostile manifests' sizes: full size here.
const hostileScale = 1
