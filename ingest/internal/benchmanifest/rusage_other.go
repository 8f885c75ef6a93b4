//go:build !unix

package main

// maxRSS is not measured where getrusage is unavailable.
func maxRSS() uint64 { return 0 }
