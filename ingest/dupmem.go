package ingest

import (
	"runtime"
	"unsafe"
)

// slotMemory holds the duplicate index's large tables outside the Go heap
// where the system allows (see mapMemory): they hold no pointers, so the
// garbage collector has nothing to find in them, yet on the heap they
// would count towards its goal, which lets the heap grow to twice what is
// live before a collection. At a million rows the tables are most of what
// is live, and the process peaked at about twice their size.
//
// A table smaller than mappedMin comes from the heap as before. The
// mappings are released when a table is replaced by a larger one, and all
// of them when the dupIndex is garbage: a Validator has no Close.
//
// With the tables gone, what is live on the heap is a few MiB, and the
// collector ran every few MiB of rows read: 218 times over a million wide
// rows instead of 16, which cost more CPU time (a third more at a million
// narrow rows) than the rest of validation had been spared. So when Scan
// sizes the tables from an estimate of the rows, the memory also takes
// headroom on the heap, half the tables' size, that it never writes: the
// collector paces itself as if that much more were live, and runs every
// few tens of MiB again, while the untouched pages (fresh from the system,
// which Go does not clear) cost no resident memory. The rows read between
// collections do: the peak is the tables and about half their size again,
// where on the heap it was about twice their size.
type slotMemory struct {
	maps     map[unsafe.Pointer][]byte // live mappings by their first byte
	mapped   int                       // their bytes
	headroom []byte                    // see above; never read or written
}

// mappedMin is the smallest table kept outside the heap: below it the
// heap's doubling costs little, and a mapping takes whole pages.
const mappedMin = 1 << 20

func newSlotMemory(owner *dupIndex) *slotMemory {
	m := &slotMemory{maps: map[unsafe.Pointer][]byte{}}
	runtime.AddCleanup(owner, (*slotMemory).freeAll, m)
	return m
}

// slots returns n zeroed slots of type S.
func slots[S any](m *slotMemory, n int) []S {
	size := n * int(unsafe.Sizeof(*new(S)))
	if m == nil || size < mappedMin {
		return make([]S, n)
	}
	b := mapMemory(size)
	if b == nil {
		return make([]S, n)
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	m.maps[p] = b
	m.mapped += len(b)
	return unsafe.Slice((*S)(p), n)
}

// reserveHeadroom takes the headroom (see slotMemory) for tables of about
// size bytes in all, once.
func (m *slotMemory) reserveHeadroom(size int) {
	if m != nil && m.headroom == nil && size >= mappedMin {
		m.headroom = make([]byte, size/2)
	}
}

// release gives back the memory of slots that came from slots; those on
// the heap are left to the garbage collector.
func release[S any](m *slotMemory, s []S) {
	if m == nil || len(s) == 0 {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(s))
	if b, ok := m.maps[p]; ok {
		delete(m.maps, p)
		m.mapped -= len(b)
		unmapMemory(b)
		if m.mapped == 0 {
			m.headroom = nil
		}
	}
}

func (m *slotMemory) freeAll() {
	for p, b := range m.maps {
		delete(m.maps, p)
		unmapMemory(b)
	}
	m.mapped, m.headroom = 0, nil
}
