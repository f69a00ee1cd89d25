package store

import "github.com/cockroachdb/pebble/v2"

// countDue counts the due index once, at Open; writes keep the count since.
func (db *DB) countDue() error {
	lo := []byte{pDue}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	n := int64(0)
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	db.due.Store(n)
	return it.Error()
}

// Scheduled is the number of events inserted for a later time and not yet published or
// cancelled.
func (db *DB) Scheduled() int64 { return db.due.Load() }
