//go:build !unix

package reports

// maxRSS is unknown here; the big report test then checks the heap only.
func maxRSS() uint64 { return 0 }
