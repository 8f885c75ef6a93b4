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
// high, row), at most 3/4 full; one slot per probe keeps a lookup to about
// one cache miss, which at a million rows is most of its cost (see
// resolve). The hash picks a slot by multiplying with the table size, so
// the size need not be a power of two: Scan sizes the table once from an
// estimate of the manifest's rows (see Validator.expectRows), to about 18
// bytes per identifier; without one the table doubles as it fills, 16-32
// bytes per identifier.
//
// The Go heap peaks well above the table: the garbage collector lets the
// heap grow to twice what was live (GOGC=100) before it frees the rows
// already handed on, and the table is most of what is live; a doubling
// also keeps the old table until then. That is why a doubling table of a
// million mixed rows (1.7 identifiers each, 48 MiB at 40% full after the
// last doubling, 72 MiB with the old one) once peaked at 140 MiB of heap,
// and why the table is sized once instead.
//
// The price of keeping hashes is that two different identifiers may share
// one. With n identifiers the chance of any such collision in a manifest
// is about n²/2⁶⁵: 1e-7 at a million rows with three identifiers each. A
// collision would report a false duplicate naming the earlier row, which a
// person can check; it can never let a real duplicate through. The hash
// seeds are random per index, so no manifest can be built to collide on
// purpose.
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

// hash is the key of value v of the given kind.
func (d *dupIndex) hash(kind dupKind, v string) uint64 {
	if key := maphash.String(d.seeds[kind], v); key != 0 {
		return key
	}
	return 1 // 0 marks an empty slot
}

// use records that row uses the identifier with this key (see hash). When
// an earlier row already used it, use returns that row and true and keeps
// the earlier one.
func (d *dupIndex) use(key uint64, row int) (earlier int, dup bool) {
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

// dupKindNames name each kind in duplicate problems.
var dupKindNames = [dupKinds]struct{ col, name string }{
	dupEID:    {ColEID, "EID"},
	dupICCID:  {ColICCID, "ICCID"},
	dupMSISDN: {ColCLI, "MSISDN"},
	dupIMSI:   {ColCLI, "IMSI"},
}

// dupUse is an identifier of a checked row waiting for its lookup in the
// duplicate index.
type dupUse struct {
	key     uint64 // see hash
	raw     string // the cell, for the problem
	row     int
	at      int // where in the row's problems a duplicate problem goes
	earlier int // the row that used it first, when dup
	kind    dupKind
	dup     bool
}

// resolve looks up and records the identifiers of one or more rows, in
// order. At a million rows nearly every lookup misses the CPU cache; a
// tight loop over many rows' identifiers lets the processor wait for
// several of those misses at once, where one lookup per row, between that
// row's other checks, waits for each in turn.
func (d *dupIndex) resolve(uses []dupUse) {
	for i := range uses {
		u := &uses[i]
		u.earlier, u.dup = d.use(u.key, u.row)
	}
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
