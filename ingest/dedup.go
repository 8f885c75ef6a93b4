package ingest

import (
	"hash/maphash"
	"math/bits"
)

// dupKind is the kind of identifier in the duplicate index. Each kind
// hashes with its own seed: an EID that happens to equal some ICCID's
// digits is not a duplicate of it.
type dupKind uint8

const (
	dupEID dupKind = iota
	dupICCID
	dupMSISDN
	dupIMSI
	dupKinds
)

// dupIndex remembers the first row that used each identifier without
// keeping the identifiers: a 64-bit hash of kind and value maps to the row
// number. It is an open-addressing table of 12-byte slots (hash low, hash
// high, row), at most 3/4 full. Identifiers are spread over the slots by
// multiplying the hash by the table size, so the size need not be a power
// of two and can follow the manifest closely; Scan sizes it once from the
// manifest's file size (see expectRows) so that the table is 16-20 bytes
// per identifier and is not copied while it grows. Without an estimate it
// doubles, ending 16-32 bytes per identifier. A million rows with EID and
// ICCID cost 32-40 MB where the strings alone would be well over 100 MB.
// One slot per probe also keeps a lookup to about one cache miss, which at
// a million rows is most of its cost.
//
// The table is most of what a scan keeps alive, so the Go heap peaks at
// about twice its size: the garbage collector lets a heap grow to twice
// its live size (GOGC=100) before collecting the rows already handed on.
// Each growth also holds the old and the new table until then, which is
// why growing by small steps after an estimate matters.
//
// The price is that two different identifiers may share a hash. With n
// identifiers the chance of any such collision in a manifest is about
// n²/2⁶⁵: 1e-7 at a million rows with three identifiers each. A collision
// would report a false duplicate naming the earlier row, which a person can
// check; it can never let a real duplicate through. The hash seeds are
// random per index, so no manifest can be built to collide on purpose.
type dupIndex struct {
	seeds    [dupKinds]maphash.Seed
	slots    []dupSlot
	n        int  // identifiers held
	reserved bool // sized from an estimate: grow by small steps
}

// dupSlot is one identifier: its hash (0 = empty slot) and first row.
type dupSlot struct{ lo, hi, row uint32 }

const dupInitialSlots = 1 << 10

func newDupIndex() *dupIndex {
	d := &dupIndex{slots: make([]dupSlot, dupInitialSlots)}
	for i := range d.seeds {
		d.seeds[i] = maphash.MakeSeed()
	}
	return d
}

// use records that row uses value v of the given kind. When an earlier row
// already used it, use returns that row and true and keeps the earlier one.
func (d *dupIndex) use(kind dupKind, v string, row int) (earlier int, dup bool) {
	key := maphash.String(d.seeds[kind], v)
	if key == 0 {
		key = 1 // 0 marks an empty slot
	}
	if (d.n+1)*4 > len(d.slots)*3 {
		d.grow()
	}
	s := &d.slots[d.find(key)]
	if s.lo|s.hi != 0 {
		return int(s.row), true
	}
	*s = dupSlot{uint32(key), uint32(key >> 32), uint32(row)}
	d.n++
	return 0, false
}

// size is the number of slots.
func (d *dupIndex) size() int { return len(d.slots) }

// find returns the slot that holds key, or the empty slot where it belongs
// (linear probing from the slot the hash's top bits choose).
func (d *dupIndex) find(key uint64) int {
	lo, hi := uint32(key), uint32(key>>32)
	slots := d.slots
	home, _ := bits.Mul64(key, uint64(len(slots)))
	for i := int(home); ; {
		s := &slots[i]
		if (s.lo == lo && s.hi == hi) || s.lo|s.hi == 0 {
			return i
		}
		if i++; i == len(slots) {
			i = 0
		}
	}
}

// grow makes room when the table is 3/4 full: twice the slots, or half as
// many again when an estimate sized it and fell a little short.
func (d *dupIndex) grow() {
	if d.reserved {
		d.resize(len(d.slots) + len(d.slots)/2)
	} else {
		d.resize(2 * len(d.slots))
	}
}

// reserve sizes the table for n identifiers in all, from an estimate: it
// never shrinks the table, and later growth takes small steps.
func (d *dupIndex) reserve(n int) {
	d.reserved = true
	if want := n/3*4 + 4; want > len(d.slots) { // at most 3/4 full
		d.resize(want)
	}
}

func (d *dupIndex) resize(size int) {
	old := d.slots
	d.slots = make([]dupSlot, size)
	for _, s := range old {
		if s.lo|s.hi != 0 {
			d.slots[d.find(uint64(s.lo)|uint64(s.hi)<<32)] = s
		}
	}
}

// reset forgets every identifier, keeping the memory.
func (d *dupIndex) reset() {
	clear(d.slots)
	d.n = 0
}
