//go:build race

package thingspace

// raceEnabled: the race detector allows 8128 live goroutines, which
// bounds the flood test's connections.
const raceEnabled = true
