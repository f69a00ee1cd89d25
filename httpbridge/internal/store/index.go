package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Index mode: in cluster mode the event log is a replicated stream and this store is one
// node's index of it. The log's records are applied in stream order with Apply; their stream
// sequences are the counters (an event's Order is the sequence of the record that decided it:
// its insert, or its schedule's firing or cancellation; its Seq the sequence of the record that
// published it), so every node's index holds the same values, rebuilt or not. Insert, PublishDue and Cancel are single-node mode's and are not used on an index.

// Kind is what a log record does to its event.
type Kind uint8

const (
	// KindInsert inserts an event published at once.
	KindInsert Kind = iota + 1
	// KindSchedule inserts an event to be published later (unpublished).
	KindSchedule
	// KindPublish publishes a scheduled event (the schedule fired).
	KindPublish
	// KindCancel cancels a scheduled event.
	KindCancel
)

// Record is one record of the log. Event carries the whole event (its Published, Cancelled,
// Seq and Order are ignored), so that a record whose earlier records are gone from the log
// (a schedule purged when it fired or was cancelled) still holds everything.
type Record struct {
	Seq   uint64 // stream sequence, > 0, increasing from one Apply to the next
	Kind  Kind
	Event Event
}

// Checkpoint is where an index stands in the log it was built from.
type Checkpoint struct {
	Epoch string // the log's epoch (changes when the log is made anew); "" = no index yet
	Seq   uint64 // the last stream sequence applied
	First uint64 // the first stream sequence applied since the index was made (0: none yet)
}

// metaLogKey holds the Checkpoint: epoch, last applied seq, first applied seq.
var metaLogKey = []byte{pMeta, 'l', 'o', 'g'}

// ErrEpoch: Apply with an epoch that is not the index's (Reset first).
var ErrEpoch = errors.New("store: log epoch differs from the index's")

// Checkpoint returns the index's checkpoint (zero without an index: a store never reset).
func (db *DB) Checkpoint() (Checkpoint, error) {
	if err := db.enter(); err != nil {
		return Checkpoint{}, err
	}
	defer db.ops.Done()
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.checkpointLocked()
}

func (db *DB) checkpointLocked() (Checkpoint, error) {
	v, err := get(db.pdb, metaLogKey)
	if errors.Is(err, ErrNotFound) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, err
	}
	var c Checkpoint
	if c.Seq, v, err = readU64(v); err != nil {
		return Checkpoint{}, err
	}
	if c.First, v, err = readU64(v); err != nil {
		return Checkpoint{}, err
	}
	c.Epoch = string(v)
	return c, nil
}

func checkpointVal(c Checkpoint) []byte {
	return append(appendU64(appendU64(nil, c.Seq), c.First), c.Epoch...)
}

// HasEvents tells whether the store holds any event (of a single node's log, or of an index).
func (db *DB) HasEvents() (bool, error) {
	if err := db.enter(); err != nil {
		return false, err
	}
	defer db.ops.Done()
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{pEvent}, UpperBound: []byte{pEvent + 1}})
	if err != nil {
		return false, err
	}
	defer it.Close()
	return it.First(), it.Error()
}

// Reset deletes every event and index of events and starts an empty index of the log with
// this epoch (synced). Users, sessions and tenant settings stay.
func (db *DB) Reset(epoch string) error {
	if epoch == "" {
		return fmt.Errorf("%w: empty epoch", ErrInvalid)
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.ops.Done()
	db.mu.Lock()
	defer db.mu.Unlock()
	b := db.pdb.NewBatch()
	defer b.Close()
	for _, p := range []byte{pEvent, pCollection, pByUser, pPublished, pState, pDue} {
		if err := b.DeleteRange([]byte{p}, []byte{p + 1}, nil); err != nil {
			return err
		}
	}
	b.Delete(metaOrderKey, nil)
	b.Set(metaLogKey, checkpointVal(Checkpoint{Epoch: epoch}), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	db.order = 0
	clear(db.seqs)
	db.due.Store(0)
	db.amu.Lock()
	db.applied = 0
	db.amu.Unlock()
	return nil
}

// Apply applies records in stream order, idempotently: a record at or below the checkpoint
// is skipped, an insert of an event id the index has is dropped, and a publication (or
// cancel) of an event already published or cancelled is dropped. The records and the new
// checkpoint are written in one batch, without a WAL sync (the index can be rebuilt from the
// log; a crash loses a suffix of batches and the checkpoint with them). OnPublish is then
// called for the events published, in log order, and WaitApplied callers are released.
// Apply must not be called concurrently with itself.
func (db *DB) Apply(epoch string, recs []Record) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.ops.Done()
	pubs, err := db.applyLocked(epoch, recs)
	if err != nil {
		return err
	}
	if db.onPublish != nil {
		for _, e := range pubs {
			db.onPublish(e)
		}
	}
	if len(recs) > 0 {
		db.setApplied(recs[len(recs)-1].Seq)
	}
	return nil
}

func (db *DB) applyLocked(epoch string, recs []Record) ([]Event, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	cp, err := db.checkpointLocked()
	if err != nil {
		return nil, err
	}
	if cp.Epoch == "" || cp.Epoch != epoch {
		return nil, ErrEpoch
	}
	b := db.pdb.NewIndexedBatch()
	defer b.Close()
	var pubs []Event
	due := int64(0)
	seqs := make(map[string]uint64)
	for _, r := range recs {
		if r.Seq <= cp.Seq {
			continue
		}
		if cp.First == 0 {
			cp.First = r.Seq
		}
		cp.Seq = r.Seq
		if r.Kind == 0 {
			continue // no record of ours: only the checkpoint moves past it
		}
		e := r.Event
		if e.ID == "" || e.TenantID == "" || e.Event == "" || !validUTF8(e.ID, e.TenantID, e.Event, e.CollectionID, e.UserID) {
			db.log.Error("store: skipping an invalid log record", "seq", r.Seq, "id", e.ID)
			continue
		}
		ek := eventKey(nil, e.TenantID, e.ID)
		v, err := get(b, ek)
		var old Event
		exists := err == nil
		switch {
		case exists:
			if old, err = decodeEvent(v); err != nil {
				return nil, err
			}
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		switch r.Kind {
		case KindInsert, KindSchedule:
			if exists {
				continue // a repeat of an insert (beyond the de-duplication window)
			}
			e.Order, e.Published, e.Cancelled, e.Seq = r.Seq, r.Kind == KindInsert, false, 0
			if e.Published {
				e.Seq = r.Seq
			}
			if err := db.applyNew(b, &e); err != nil {
				return nil, err
			}
			if e.Published {
				pubs = append(pubs, e)
				seqs[e.TenantID] = e.Seq
			} else {
				due++
			}
		case KindPublish, KindCancel:
			if exists && (old.Published || old.Cancelled) {
				continue // exactly once: a schedule fired again, or fired after its cancel
			}
			if exists {
				// Re-keyed under its new Order: a node that never saw the schedule (rebuilt
				// after it was purged) orders the event the same way.
				b.Delete(dueKey(nil, old.Timestamp, old.Order), nil)
				b.Delete(collKey(nil, old.TenantID, old.CollectionID, old.Timestamp, old.Order), nil)
				b.Delete(byUserKey(nil, old.TenantID, old.UserID, old.Timestamp, old.Order), nil)
				due--
				e = old
			}
			e.Order = r.Seq
			if r.Kind == KindPublish {
				e.Published, e.Cancelled, e.Seq = true, false, r.Seq
			} else {
				e.Published, e.Cancelled, e.Seq = false, true, 0
			}
			if err := db.applyNew(b, &e); err != nil {
				return nil, err
			}
			if e.Published {
				pubs = append(pubs, e)
				seqs[e.TenantID] = e.Seq
			}
		default:
			db.log.Error("store: skipping a log record of unknown kind", "seq", r.Seq, "kind", r.Kind)
		}
	}
	b.Set(metaLogKey, checkpointVal(cp), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return nil, err
	}
	for t, s := range seqs {
		db.seqs[t] = s
	}
	db.due.Add(due)
	return pubs, nil
}

// applyNew writes a new event and its indexes into b (published: the publication and state
// indexes; neither published nor cancelled: the due index).
func (db *DB) applyNew(b *pebble.Batch, e *Event) error {
	id := []byte(e.ID)
	if e.Published {
		b.Set(pubKey(nil, e.TenantID, e.Seq), id, nil)
		if err := db.setState(b, b, e); err != nil {
			return err
		}
	} else if !e.Cancelled {
		b.Set(dueKey(nil, e.Timestamp, e.Order), dueVal(nil, e.TenantID, e.ID), nil)
	}
	b.Set(collKey(nil, e.TenantID, e.CollectionID, e.Timestamp, e.Order), id, nil)
	b.Set(byUserKey(nil, e.TenantID, e.UserID, e.Timestamp, e.Order), id, nil)
	b.Set(metaOrderKey, binary.BigEndian.AppendUint64(nil, e.Order), nil)
	val, err := encodeEvent(nil, nil, e)
	if err != nil {
		return err
	}
	return b.Set(eventKey(nil, e.TenantID, e.ID), val, nil)
}

// Applied is the last stream sequence applied since Open (or since the last Reset): Open
// starts it at the stored checkpoint.
func (db *DB) Applied() uint64 {
	db.amu.Lock()
	defer db.amu.Unlock()
	return db.applied
}

func (db *DB) setApplied(seq uint64) {
	db.amu.Lock()
	if seq > db.applied {
		db.applied = seq
		if db.acond != nil {
			close(db.acond)
			db.acond = nil
		}
	}
	db.amu.Unlock()
}

// WaitApplied waits until the index has applied stream sequence seq (read-your-writes), ctx
// ends (its error), or the DB is closed (ErrClosed).
func (db *DB) WaitApplied(ctx context.Context, seq uint64) error {
	for {
		db.amu.Lock()
		if db.applied >= seq {
			db.amu.Unlock()
			return nil
		}
		if db.acond == nil {
			db.acond = make(chan struct{})
		}
		ch := db.acond
		db.amu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-db.quit:
			return ErrClosed
		}
	}
}
