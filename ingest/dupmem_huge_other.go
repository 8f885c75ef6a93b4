//go:build darwin || freebsd

package ingest

func adviseHuge([]byte) {}
