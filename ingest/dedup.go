package ingest

import (
	"hash/maphash"
	"math/bits"
	"unsafe"
)

// dupKind is the kind of identifier in the duplicate index. Each kind has
// a table of its own: an EID that happens to equal some ICCID's digits is
// not a duplicate of it.
type dupKind uint8

const (
	dupEID dupKind = iota
	dupICCID
	dupMSISDN
	dupIMSI
	dupKinds
)

// dupIndex remembers the first row that used each identifier, exactly:
// two different identifiers are never taken for one. It holds no strings
// for the identifiers a valid row has, since a million of them would be
// tens of MiB of small objects for the garbage collector to walk; their
// digits are packed into integers instead (see dupKey), which compare as
// the identifiers do. The few values that do not pack (an IMSI longer
// than a provider's rules usually allow) are kept as strings in a map.
//
// The packed keys live in open-addressing tables, one per kind, at most
// 3/4 full; one slot per probe keeps a lookup to about one cache miss,
// which at a million rows is most of its cost (see resolve). A table
// picks a slot by multiplying a hash of the key with its size, so the
// size need not be a power of two: Scan sizes each table once from an
// estimate of the manifest's rows (see Validator.expectRows), to about 30
// bytes per EID and 18 per other identifier; without one a table doubles
// as it fills.
//
// A doubling holds the old table and the new at once and copies every
// key, which is why the tables are sized once rather than doubled; and on
// the Go heap the tables would let it grow to twice their size before each
// collection, which is why large ones live outside it (see slotMemory).
type dupIndex struct {
	eids  table[[4]uint32]           // dupEID
	short [dupKinds]table[[2]uint32] // dupICCID, dupMSISDN, dupIMSI (not dupEID)
	odd   [dupKinds]map[string]int   // values that do not pack, any kind
	n     int                        // identifiers held

	touched uint32 // see resolve
}

func newDupIndex() *dupIndex {
	d := &dupIndex{}
	mem := newSlotMemory(d)
	// Each table hashes with a seed of its own, random per index.
	var h maphash.Hash
	d.eids.seed, d.eids.hash, d.eids.mem = h.Sum64(), hashEID, mem
	for k := range d.short {
		h.WriteByte(byte(k))
		d.short[k].seed, d.short[k].hash, d.short[k].mem = h.Sum64(), hashShort, mem
	}
	return d
}

// dupKey is an identifier packed exactly into integers, or, when it does
// not pack (ok false), the identifier itself in s.
//
//   - An EID (32 digits) is hi and lo, its first and last 16 digits as
//     numbers.
//   - An ICCID of 18 to 20 digits starting with 89 is lo: the digits after
//     the 89 as a number (below 10^18, 60 bits) with the length in the
//     top bits, so that 8901... and 891... differ.
//   - An MSISDN or IMSI of up to 17 digits is lo: the number (below 10^17,
//     57 bits) with the length in the top bits, which keeps leading zeros.
type dupKey struct {
	hi, lo uint64
	h      uint64 // the packed key's hash, for its table's slot
	s      string
	ok     bool
}

// packDigits returns the number s writes and true when s is 1 to 19
// ASCII digits.
func packDigits(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	return n, true
}

// key packs identifier v of the given kind (see dupKey).
func (d *dupIndex) key(kind dupKind, v string) dupKey {
	switch kind {
	case dupEID:
		if len(v) == 32 {
			hi, ok1 := packDigits(v[:16])
			lo, ok2 := packDigits(v[16:])
			if ok1 && ok2 {
				return d.eidKey(hi, lo)
			}
		}
	case dupICCID:
		if n := len(v); n >= 18 && n <= 20 && v[0] == '8' && v[1] == '9' {
			if lo, ok := packDigits(v[2:]); ok {
				return d.shortKey(kind, uint64(n-17)<<60|lo)
			}
		}
	default:
		if n := len(v); n <= 17 {
			if lo, ok := packDigits(v); ok {
				return d.shortKey(kind, uint64(n)<<57|lo)
			}
		}
	}
	return dupKey{s: v}
}

// eidKey is the key of the EID whose first and last 16 digits are hi and
// lo.
func (d *dupIndex) eidKey(hi, lo uint64) dupKey {
	return dupKey{hi: hi, lo: lo, h: hashEID(eidWords(hi, lo), d.eids.seed), ok: true}
}

// shortKey is the key of an identifier of a kind but EID packed into k.
func (d *dupIndex) shortKey(kind dupKind, k uint64) dupKey {
	return dupKey{lo: k, h: hashShort(shortWords(k), d.short[kind].seed), ok: true}
}

// use records that row uses the identifier with this key. When an earlier
// row already used it, use returns that row and true and keeps the earlier
// one.
func (d *dupIndex) use(kind dupKind, k dupKey, row int) (earlier int, dup bool) {
	switch {
	case !k.ok:
		m := d.odd[kind]
		if m == nil {
			m = make(map[string]int)
			d.odd[kind] = m
		}
		if r, ok := m[k.s]; ok {
			return r, true
		}
		m[k.s] = row
	case kind == dupEID:
		if earlier, dup = d.eids.use(eidWords(k.hi, k.lo), k.h, row); dup {
			return earlier, true
		}
	default:
		if earlier, dup = d.short[kind].use(shortWords(k.lo), k.h, row); dup {
			return earlier, true
		}
	}
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
	key     dupKey // see dupIndex.key
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
//
// The first loop is that wait, on its own: it only reads the slot where
// each lookup will start, loads that do not depend on one another, so the
// processor fetches all of their cache lines at once; the lookups proper
// then find them in the cache.
func (d *dupIndex) resolve(uses []dupUse) {
	var touched uint32
	for i := range uses {
		u := &uses[i]
		switch {
		case !u.key.ok:
		case u.kind == dupEID:
			if t := &d.eids; len(t.slots) > 0 {
				touched += t.slots[home(u.key.h, len(t.slots))].row
			}
		default:
			if t := &d.short[u.kind]; len(t.slots) > 0 {
				touched += t.slots[home(u.key.h, len(t.slots))].row
			}
		}
	}
	d.touched = touched // kept, so that the compiler keeps the loads
	for i := range uses {
		u := &uses[i]
		u.earlier, u.dup = d.use(u.kind, u.key, u.row)
	}
}

// reserve sizes the table of each kind for about n[kind] identifiers in
// all, from an estimate: it never shrinks a table, and later growth takes
// small steps.
func (d *dupIndex) reserve(n [dupKinds]int) {
	d.eids.reserve(n[dupEID])
	size := d.eids.bytes()
	for k := dupICCID; k < dupKinds; k++ {
		d.short[k].reserve(n[k])
		size += d.short[k].bytes()
	}
	d.eids.mem.reserveHeadroom(size)
}

// held returns how many packed identifiers of each kind the index holds.
func (d *dupIndex) held() (n [dupKinds]int) {
	n[dupEID] = d.eids.n
	for k := dupICCID; k < dupKinds; k++ {
		n[k] = d.short[k].n
	}
	return n
}

// size is the number of slots of all tables.
func (d *dupIndex) size() int {
	n := len(d.eids.slots)
	for k := range d.short {
		n += len(d.short[k].slots)
	}
	return n
}

// free forgets every identifier and gives back the memory of the tables
// at once, rather than when the index is garbage. The index may be used
// again.
func (d *dupIndex) free() {
	release(d.eids.mem, d.eids.slots)
	d.eids.slots = nil
	for k := range d.short {
		release(d.short[k].mem, d.short[k].slots)
		d.short[k].slots = nil
	}
	d.reset()
}

// reset forgets every identifier, keeping the memory.
func (d *dupIndex) reset() {
	clear(d.eids.slots)
	d.eids.n = 0
	for k := range d.short {
		clear(d.short[k].slots)
		d.short[k].n = 0
	}
	clear(d.odd[:])
	d.n = 0
}

// mix is the finaliser of SplitMix64: every bit of x moves every bit of
// the slot a key hashes to. A random seed goes in with the key, so no
// manifest can be built to crowd one stretch of a table.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// home is where a key with hash h starts probing in a table of n slots.
func home(h uint64, n int) int {
	i, _ := bits.Mul64(h, uint64(n))
	return int(i)
}

// Growth: a table is at most 3/4 full. It doubles when it fills, or
// grows by half again once an estimate has sized it and fell short.
func grownSize(size int, reserved bool) int {
	if size == 0 {
		return dupInitialSlots
	}
	if reserved {
		return size + size/2
	}
	return 2 * size
}

const dupInitialSlots = 1 << 10

// reservedSize is the size of a table for n identifiers (at most 3/4
// full), or 0 when one of size has room already.
func reservedSize(n, size int) int {
	if want := n/3*4 + 4; want > size {
		return want
	}
	return 0
}

// words is an identifier's packed key as a slot holds it, in 32-bit
// words so that no padding rounds a slot up: two for ICCIDs, MSISDNs and
// IMSIs (one 64-bit key), four for EIDs (two 64-bit halves).
type words interface{ [2]uint32 | [4]uint32 }

// slot is a key and 1 + the row that used it first (0: empty): 12 bytes
// for a short key, 20 for an EID.
type slot[K words] struct {
	key K
	row uint32
}

// table holds the packed keys of one kind in open addressing.
type table[K words] struct {
	slots    []slot[K]
	n        int
	reserved bool
	seed     uint64                        // of the slot hash
	hash     func(k K, seed uint64) uint64 // where a key goes: see home
	mem      *slotMemory                   // where its slots come from
}

func shortWords(k uint64) [2]uint32 { return [2]uint32{uint32(k), uint32(k >> 32)} }

func eidWords(hi, lo uint64) [4]uint32 {
	return [4]uint32{uint32(hi), uint32(hi >> 32), uint32(lo), uint32(lo >> 32)}
}

func hashShort(k [2]uint32, seed uint64) uint64 {
	return mix((uint64(k[0]) | uint64(k[1])<<32) ^ seed)
}

func hashEID(k [4]uint32, seed uint64) uint64 {
	hi, lo := uint64(k[0])|uint64(k[1])<<32, uint64(k[2])|uint64(k[3])<<32
	return mix(hi ^ mix(lo^seed))
}

func (t *table[K]) use(k K, h uint64, row int) (earlier int, dup bool) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(grownSize(len(t.slots), t.reserved))
	}
	s := &t.slots[t.find(k, h)]
	if s.row != 0 {
		return int(s.row) - 1, true
	}
	*s = slot[K]{k, uint32(row) + 1}
	t.n++
	return 0, false
}

// find returns the slot that holds k (whose hash is h), or the empty slot
// where it belongs (linear probing).
func (t *table[K]) find(k K, h uint64) int {
	slots := t.slots
	for i := home(h, len(slots)); ; {
		s := &slots[i]
		if s.row == 0 || s.key == k {
			return i
		}
		if i++; i == len(slots) {
			i = 0
		}
	}
}

func (t *table[K]) reserve(n int) {
	t.reserved = true
	if size := reservedSize(n, len(t.slots)); size > 0 {
		t.resize(size)
	}
}

// resize moves the keys to a table of size slots.
func (t *table[K]) resize(size int) {
	old := t.slots
	t.slots = slots[slot[K]](t.mem, size)
	for _, s := range old {
		if s.row != 0 {
			t.slots[t.find(s.key, t.hash(s.key, t.seed))] = s
		}
	}
	release(t.mem, old)
}

// bytes is the memory of its slots.
func (t *table[K]) bytes() int { return len(t.slots) * int(unsafe.Sizeof(slot[K]{})) }
