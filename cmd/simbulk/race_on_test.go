//go:build race

package main

// raceBuild: the race detector slows Go code several times, so tests that
// build large inputs build smaller ones.
const raceBuild = true
