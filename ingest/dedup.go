package ingest

import "hash/maphash"

// Identifier kinds in the duplicate index. The kind is part of the key: an
// EID that happens to equal some ICCID's digits is not a duplicate of it.
const (
	dupEID    byte = 'e'
	dupICCID  byte = 'i'
	dupMSISDN byte = 'm'
	dupIMSI   byte = 's'
)

// dupIndex remembers the first row that used each identifier without
// keeping the identifiers: a 64-bit hash of kind and value maps to the row
// number. It is an open-addressing table of 12-byte slots (hash low, hash
// high, row) in one []uint32, at most 3/4 full, so 16-32 bytes per
// identifier: a million rows with EID and ICCID cost 32-64 MB where the
// strings alone would be well over 100 MB. One slot per probe also keeps a
// lookup to about one cache miss, which at a million rows is most of its
// cost.
//
// The price is that two different identifiers may share a hash. With n
// identifiers the chance of any such collision in a manifest is about
// n²/2⁶⁵: 1e-7 at a million rows with three identifiers each. A collision
// would report a false duplicate naming the earlier row, which a person can
// check; it can never let a real duplicate through. The hash seed is random
// per index, so no manifest can be built to collide on purpose.
type dupIndex struct {
	h     maphash.Hash
	slots []uint32 // 3 per slot: hash low, hash high, row; hash 0 = empty
	n     int      // identifiers held
}

const dupInitialSlots = 1 << 10

func newDupIndex() *dupIndex {
	d := &dupIndex{slots: make([]uint32, 3*dupInitialSlots)}
	d.h.SetSeed(maphash.MakeSeed())
	return d
}

// use records that row uses value v of the given kind. When an earlier row
// already used it, use returns that row and true and keeps the earlier one.
func (d *dupIndex) use(kind byte, v string, row int) (earlier int, dup bool) {
	d.h.Reset()
	d.h.WriteByte(kind)
	d.h.WriteString(v)
	key := d.h.Sum64()
	if key == 0 {
		key = 1 // 0 marks an empty slot
	}
	if (d.n+1)*4 > d.size()*3 {
		d.grow()
	}
	i := d.find(key)
	if d.slots[3*i] != 0 || d.slots[3*i+1] != 0 {
		return int(d.slots[3*i+2]), true
	}
	d.slots[3*i], d.slots[3*i+1], d.slots[3*i+2] = uint32(key), uint32(key>>32), uint32(row)
	d.n++
	return 0, false
}

// size is the number of slots.
func (d *dupIndex) size() int { return len(d.slots) / 3 }

// find returns the slot that holds key, or the empty slot where it belongs
// (linear probing from the hash's own slot).
func (d *dupIndex) find(key uint64) int {
	mask := d.size() - 1
	lo, hi := uint32(key), uint32(key>>32)
	for i := int(key) & mask; ; i = (i + 1) & mask {
		a, b := d.slots[3*i], d.slots[3*i+1]
		if (a == lo && b == hi) || (a == 0 && b == 0) {
			return i
		}
	}
}

func (d *dupIndex) grow() {
	old := d.slots
	d.slots = make([]uint32, 2*len(old))
	for j := 0; j < len(old); j += 3 {
		if old[j] == 0 && old[j+1] == 0 {
			continue
		}
		i := d.find(uint64(old[j]) | uint64(old[j+1])<<32)
		copy(d.slots[3*i:3*i+3], old[j:j+3])
	}
}

// reset forgets every identifier, keeping the memory.
func (d *dupIndex) reset() {
	clear(d.slots)
	d.n = 0
}
