package ingest

import (
	"errors"
	"io"
)

// Scan streams every record of r through one Validator and hands each row,
// in file order, with its problems, to fn. The header-level problems (see
// NewValidator) come back as the second result; a manifest-wide fault such
// as a column its provider needs also shows on every row it affects, so
// HasErrors(problems) alone decides whether a row is valid. fn may be nil to
// only count.
//
// A row the reader could not read whole (a *RowError from Next) reaches fn
// with the reader's problem only, and reading goes on. An error from fn
// stops the scan and is returned as is, as is any other error from r; the
// Summary then counts the rows seen so far.
//
// Reading and checking overlap: a goroutine reads records ahead in small
// batches while the caller's goroutine validates and calls fn, so a scan
// takes about as long as the slower of the two rather than their sum.
// When the caller falls behind, the reading goroutine checks whole batches
// itself (all but the duplicate index, which only the caller's goroutine
// touches, in file order) instead of waiting, so both keep busy. Only that
// goroutine calls r.Next, and it has stopped when Scan returns, so the
// caller may Close r then. Scan does not close r.
func Scan(r Reader, opts ValidateOptions, fn func(row Row, problems []Problem) error) (Summary, []Problem, error) {
	v, headerProblems := NewValidator(r.Header(), opts)
	defer v.dups.free() // last: after the reading goroutine has stopped
	var sum Summary

	batches := make(chan *scanBatch, scanQueue)
	free := make(chan *scanBatch, scanQueue+2)
	done := make(chan struct{})
	go readAhead(r, v, batches, free, done)
	defer func() {
		close(done)
		for range batches { // wait until the reader goroutine has left r
		}
	}()

	for b := range batches {
		if !b.checked {
			b.check(v)
		}
		// All the batch's identifiers at once: see dupIndex.resolve.
		v.dups.resolve(b.uses)
		if b.rows > 0 {
			v.expectRows(sum.Rows+len(b.items), b.rows)
		}
		for i := range b.items {
			it := &b.items[i]
			end := len(b.uses)
			if i+1 < len(b.items) {
				end = b.items[i+1].uses
			}
			problems := addDuplicates(it.problems, b.uses[it.uses:end])
			sum.Rows++
			if HasErrors(problems) {
				sum.Invalid++
			} else {
				sum.Valid++
			}
			if fn != nil {
				if err := fn(it.row, problems); err != nil {
					return sum, headerProblems, err
				}
			}
		}
		if b.err != nil {
			if errors.Is(b.err, io.EOF) {
				return sum, headerProblems, nil
			}
			return sum, headerProblems, b.err
		}
		clear(b.items) // let the rows go: the caller has them now
		select {
		case free <- b:
		default:
		}
	}
	return sum, headerProblems, nil
}

// Read-ahead sizes: records per batch and batches in flight. Large enough
// to make the channel's cost vanish per row, small enough that memory does
// not grow with the manifest: the rows in flight are most of what the
// garbage collector marks in every cycle, and with 256-row batches it took
// over twice the CPU time at 100,000 rows.
const (
	scanBatchSize = 64
	scanQueue     = 4
)

// scanBatch is a run of records; err, when set, ended the reading (io.EOF
// or a fatal read error) after the items. One early batch carries the
// reader's guess of the manifest's rows, if it has one. Batches are reused
// once the caller's goroutine is done with them.
type scanBatch struct {
	items   []scanItem
	uses    []dupUse // the items' identifiers, once checked
	checked bool
	err     error
	rows    int
	scratch checkScratch // for check, on whichever goroutine runs it
}

type scanItem struct {
	rec Record
	err *RowError // the row could not be read whole

	// Once the batch is checked:
	row      Row
	problems []Problem // all but duplicates
	uses     int       // the row's first identifier in the batch's uses
}

// check checks the batch's rows but for duplicates. It touches nothing
// of v that another check may change, so either goroutine may run it.
func (b *scanBatch) check(v *Validator) {
	for i := range b.items {
		it := &b.items[i]
		it.uses = len(b.uses)
		if it.err != nil {
			it.row, it.problems = v.unreadRow(&it.rec, it.err)
		} else {
			it.problems = v.check(&it.rec, &it.row, &b.uses, &b.scratch)
		}
	}
	b.checked = true
}

// rowEstimator is a Reader that can guess from the file's size how many
// records it holds. Scan uses the guess to size the duplicate index once
// instead of growing it, since each growth holds the old and the new table
// at once and copies every identifier.
type rowEstimator interface {
	estimateRows() int
}

// recordFiller is a Reader that can read a record into place: the batch's
// item, rather than through two copies on the way.
type recordFiller interface {
	nextInto(rec *Record) error
}

// readAhead reads r into batches until the end, a fatal error, or done.
func readAhead(r Reader, v *Validator, out chan<- *scanBatch, free <-chan *scanBatch, done <-chan struct{}) {
	defer close(out)
	est, _ := r.(rowEstimator)
	next := func(rec *Record) (err error) {
		*rec, err = r.Next()
		return err
	}
	if f, ok := r.(recordFiller); ok {
		next = f.nextInto
	}
	for {
		select {
		case <-done: // the caller has stopped: read no further
			return
		default:
		}
		var b *scanBatch
		select {
		case b = <-free:
			*b = scanBatch{items: b.items[:0], uses: b.uses[:0]}
		default:
			b = &scanBatch{items: make([]scanItem, 0, scanBatchSize)}
		}
		for len(b.items) < scanBatchSize {
			b.items = append(b.items, scanItem{})
			it := &b.items[len(b.items)-1]
			err := next(&it.rec)
			if err == nil {
				continue
			}
			// Its own function: the address errors.As takes would put a
			// variable on the heap for every row, not only the bad ones.
			if it.err = asRowError(err); it.err == nil {
				b.items = b.items[:len(b.items)-1]
				b.err = err
				break
			}
		}
		if est != nil {
			if b.rows = est.estimateRows(); b.rows > 0 {
				est = nil
			}
		}
		select {
		case out <- b:
		case <-done:
			return
		default:
			// The caller is behind: check the batch here rather than wait.
			b.check(v)
			select {
			case out <- b:
			case <-done:
				return
			}
		}
		if b.err != nil {
			return
		}
	}
}

// asRowError returns err as a *RowError, or nil when it is not one.
func asRowError(err error) *RowError {
	var rowErr *RowError
	if errors.As(err, &rowErr) {
		return rowErr
	}
	return nil
}
