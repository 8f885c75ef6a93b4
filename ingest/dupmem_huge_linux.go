package ingest

import "syscall"

// adviseHuge asks for transparent huge pages for a mapped table: its
// slots are hit at random, one or two per identifier, and with 4 KiB pages
// nearly every hit in a table of tens of MiB also missed the TLB. Where
// the system does not do huge pages the advice is ignored.
func adviseHuge(b []byte) { _ = syscall.Madvise(b, syscall.MADV_HUGEPAGE) }
