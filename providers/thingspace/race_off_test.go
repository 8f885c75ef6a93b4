//go:build !race

package thingspace

const raceEnabled = false
