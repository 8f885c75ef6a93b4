//go:build !unix

package peakmem

func maxRSS() uint64 { return 0 }
