package store

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// publishChunk bounds the events PublishDue writes in one batch.
const publishChunk = 512

// Insert stores e (e.Order is assigned; Published/Cancelled/Seq from the caller are ignored).
// If publishNow, the record is stored already published with its Seq, in the same synced
// batch, and OnPublish(e) has been called before Insert returns. Otherwise it is stored
// unpublished and indexed by due time. Insert returns only once the record is durable; the
// returned Event is the stored record. ErrInvalid if ID, TenantID or Event is empty, a
// string is not UTF-8 (JSON could not keep it), or Data is not JSON.
//
// If the tenant already has an event with that ID, Insert stores nothing and returns
// ErrExists with the stored record (once that is durable): the check and the write are
// atomic, so of concurrent inserts of one ID exactly one stores it.
func (db *DB) Insert(e Event, publishNow bool) (Event, error) {
	if e.ID == "" || e.TenantID == "" || e.Event == "" {
		return Event{}, fmt.Errorf("%w: event needs an id, a tenant and a name", ErrInvalid)
	}
	if !validUTF8(e.ID, e.TenantID, e.Event, e.CollectionID, e.UserID) {
		return Event{}, fmt.Errorf("%w: strings must be UTF-8", ErrInvalid)
	}
	e.Published, e.Cancelled, e.Seq = false, false, 0
	if err := db.enter(); err != nil {
		return Event{}, err
	}
	defer db.ops.Done()
	p := pendingPool.Get().(*pending)
	stored, ticket, alone, err := db.insertLocked(&e, publishNow, p)
	if err == nil {
		err = db.await(p, alone)
	}
	p.pubs, p.one[0] = nil, Event{}
	pendingPool.Put(p)
	if errors.Is(err, ErrExists) {
		// The record may be a concurrent insert's, committed but not yet synced.
		db.waitDurable(ticket)
		return stored, err
	}
	if err != nil {
		return Event{}, err
	}
	return e, nil
}

// insertLocked writes e and queues the commit as p (alone as commitLocked's); or, if the
// event exists, returns it with ErrExists and the commit ticket to wait for before answering
// with it. The key and value buffers are the DB's, reused under mu: a pebble batch copies
// what it is given.
func (db *DB) insertLocked(e *Event, publishNow bool, p *pending) (stored Event, ticket uint64, alone bool, err error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.ekey = eventKey(db.ekey[:0], e.TenantID, e.ID)
	switch v, err := get(db.pdb, db.ekey); {
	case err == nil:
		if stored, err = decodeEvent(v); err != nil {
			return Event{}, 0, false, err
		}
		return stored, db.ticket, false, ErrExists
	case !errors.Is(err, ErrNotFound):
		return Event{}, 0, false, err
	}
	alone, err = db.writeInsertLocked(e, publishNow, p)
	return Event{}, 0, alone, err
}

// writeInsertLocked is insertLocked's write of a new event.
func (db *DB) writeInsertLocked(e *Event, publishNow bool, p *pending) (alone bool, err error) {
	e.Order = db.order + 1
	b := db.pdb.NewBatch()
	defer b.Close()
	db.id = append(db.id[:0], e.ID...)
	if publishNow {
		last, err := db.lastSeqLocked(e.TenantID)
		if err != nil {
			return false, err
		}
		e.Published, e.Seq = true, last+1
		db.key = pubKey(db.key[:0], e.TenantID, e.Seq)
		b.Set(db.key, db.id, nil)
		if err := db.setState(db.pdb, b, e); err != nil {
			return false, err
		}
		p.one[0] = *e
		p.pubs = p.one[:]
	} else {
		db.key = dueKey(db.key[:0], e.Timestamp, e.Order)
		db.val = dueVal(db.val[:0], e.TenantID, e.ID)
		b.Set(db.key, db.val, nil)
	}
	db.key = collKey(db.key[:0], e.TenantID, e.CollectionID, e.Timestamp, e.Order)
	b.Set(db.key, db.id, nil)
	db.key = byUserKey(db.key[:0], e.TenantID, e.UserID, e.Timestamp, e.Order)
	b.Set(db.key, db.id, nil)
	db.key = appendU64(db.key[:0], e.Order)
	b.Set(metaOrderKey, db.key, nil)
	if db.val, err = encodeEvent(db.val[:0], &db.json, e); err != nil {
		return false, err
	}
	b.Set(db.ekey, db.val, nil)
	if alone, err = db.commitEventsLocked(b, p); err != nil {
		return false, err
	}
	db.order = e.Order
	if publishNow {
		db.seqs[e.TenantID] = e.Seq
	} else {
		db.due.Add(1)
	}
	return alone, nil
}

// setState makes e the state of its (name, collection) unless the current one is later by
// (Timestamp, Order). r must see the writes of b already made (b itself if indexed).
func (db *DB) setState(r reader, b *pebble.Batch, e *Event) error {
	db.key = stateKey(db.key[:0], e.TenantID, e.Event, e.CollectionID)
	v, closer, err := r.Get(db.key)
	switch {
	case err == nil:
		ts, order, _, err := readStateVal(v)
		closer.Close()
		if err != nil {
			return err
		}
		if ts > e.Timestamp || ts == e.Timestamp && order > e.Order {
			return nil
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	db.val = stateVal(db.val[:0], e.Timestamp, e.Order, e.ID)
	return b.Set(db.key, db.val, nil)
}

// PublishDue publishes every unpublished, uncancelled event with Timestamp <= now (Unix
// seconds), oldest first (then by insertion order): flag + Seq written in one synced batch
// (per chunk of 512), then OnPublish for each. It returns once they are durable and
// announced. Safe to call concurrently (each event is published by one call only).
func (db *DB) PublishDue(now int64) (n int, err error) {
	if err := db.enter(); err != nil {
		return 0, err
	}
	defer db.ops.Done()
	var dones []<-chan error
	for {
		done, k, err := db.publishChunk(now)
		if err != nil {
			return n, err
		}
		if k == 0 {
			break
		}
		n += k
		dones = append(dones, done)
		db.kickPublisher() // it syncs this chunk while the next one is made
		if k < publishChunk {
			break
		}
	}
	for _, d := range dones {
		if e := <-d; e != nil && err == nil {
			err = e
		}
	}
	return n, err
}

func (db *DB) publishChunk(now int64) (done <-chan error, n int, err error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	// The Seq counters move as the chunk is built, so that two events of one tenant get
	// consecutive Seqs; if the chunk is not committed they are reloaded from the store.
	defer func() {
		if done == nil {
			clear(db.seqs)
		}
	}()
	lo := []byte{pDue}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	b := db.pdb.NewIndexedBatch()
	defer b.Close()
	var pubs []Event
	removed := int64(0)
	for ok := it.First(); ok && len(pubs) < publishChunk; ok = it.Next() {
		ts, _, err := readDueKey(it.Key())
		if err == nil && ts > now {
			break
		}
		e, err := db.dueEvent(it.Key(), it.Value())
		if err != nil {
			// A due entry that names no valid event would stop every later publication:
			// drop it, loudly, rather than block the scheduler.
			db.log.Error("store: dropping a bad due index entry", "key", fmt.Sprintf("%x", it.Key()), "error", err)
			b.Delete(it.Key(), nil)
			removed++
			continue
		}
		b.Delete(it.Key(), nil)
		removed++
		if e.Published || e.Cancelled { // cannot happen: both remove the due entry
			continue
		}
		last, err := db.lastSeqLocked(e.TenantID)
		if err != nil {
			return nil, 0, err
		}
		e.Published, e.Seq = true, last+1
		v, err := encodeEvent(nil, nil, &e)
		if err != nil {
			return nil, 0, err
		}
		b.Set(eventKey(nil, e.TenantID, e.ID), v, nil)
		b.Set(pubKey(nil, e.TenantID, e.Seq), []byte(e.ID), nil)
		if err := db.setState(b, b, &e); err != nil {
			return nil, 0, err
		}
		db.seqs[e.TenantID] = e.Seq
		pubs = append(pubs, e)
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	if b.Empty() {
		return nil, 0, nil
	}
	p := newPending(pubs)
	if _, err := db.commitEventsLocked(b, p); err != nil {
		return nil, 0, err
	}
	db.due.Add(-removed)
	return p.done, len(pubs), nil
}

// dueEvent reads the event a due index entry names.
func (db *DB) dueEvent(k, v []byte) (Event, error) {
	if _, _, err := readDueKey(k); err != nil {
		return Event{}, err
	}
	tenant, id, err := readDueVal(v)
	if err != nil {
		return Event{}, err
	}
	v, err = get(db.pdb, eventKey(nil, tenant, id))
	if err != nil {
		return Event{}, fmt.Errorf("event %q of tenant %q: %w", id, tenant, err)
	}
	e, err := decodeEvent(v)
	if err == nil && (e.TenantID != tenant || e.ID != id) {
		err = errBadKey
	}
	return e, err
}

// NextDue is the timestamp of the earliest unpublished, uncancelled event (ok=false if none,
// or if the DB is closed).
func (db *DB) NextDue() (ts int64, ok bool) {
	if db.enter() != nil {
		return 0, false
	}
	defer db.ops.Done()
	lo := []byte{pDue}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return 0, false
	}
	defer it.Close()
	if !it.First() {
		return 0, false
	}
	ts, _, err = readDueKey(it.Key())
	return ts, err == nil
}

// Cancel marks an unpublished event cancelled (synced) and removes it from the due index.
// ErrNotFound (unknown, or of another tenant); ErrPublished and ErrCancelled come with the
// stored record.
func (db *DB) Cancel(tenant, id string) (Event, error) {
	if err := db.enter(); err != nil {
		return Event{}, err
	}
	defer db.ops.Done()
	ek := eventKey(nil, tenant, id)
	db.mu.Lock()
	v, err := get(db.pdb, ek)
	if err != nil {
		db.mu.Unlock()
		return Event{}, err
	}
	e, err := decodeEvent(v)
	switch {
	case err != nil:
	case e.Published:
		err = ErrPublished
	case e.Cancelled:
		err = ErrCancelled
	}
	if err != nil {
		db.mu.Unlock()
		return e, err
	}
	e.Cancelled = true
	if v, err = encodeEvent(nil, nil, &e); err != nil {
		db.mu.Unlock()
		return Event{}, err
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	b.Set(ek, v, nil)
	// The due entry is counted out only if there is one (PublishDue drops one it cannot read).
	dk := dueKey(nil, e.Timestamp, e.Order)
	due, err := db.has(dk)
	if err != nil {
		db.mu.Unlock()
		return Event{}, err
	}
	if due {
		b.Delete(dk, nil)
	}
	if err := db.commitUnlock(b, true); err != nil {
		return Event{}, err
	}
	if due {
		db.due.Add(-1)
	}
	return e, nil
}

// Get returns one event of tenant; ErrNotFound also for another tenant's event.
func (db *DB) Get(tenant, id string) (Event, error) {
	if err := db.enter(); err != nil {
		return Event{}, err
	}
	defer db.ops.Done()
	s := db.snapshot()
	defer s.Close()
	return getEvent(s, tenant, id)
}

func getEvent(r reader, tenant, id string) (Event, error) {
	v, err := get(r, eventKey(nil, tenant, id))
	if err != nil {
		return Event{}, err
	}
	return decodeEvent(v)
}

// eventGetter reads the events an index names, building their keys in one buffer.
type eventGetter struct {
	r      reader
	prefix int // len of 'e' STR(tenant) in key
	key    []byte
}

func newEventGetter(r reader, tenant string) *eventGetter {
	k := key1(pEvent, tenant)
	return &eventGetter{r: r, prefix: len(k), key: k}
}

func (g *eventGetter) get(id []byte) (Event, error) {
	g.key = appendStr(g.key[:g.prefix], id)
	v, err := get(g.r, g.key)
	if err != nil {
		return Event{}, err
	}
	return decodeEvent(v)
}

// Collection returns every event (published or not, cancelled or not) of one collection of
// one tenant, ascending timestamp then insertion order.
func (db *DB) Collection(tenant, collection string) ([]Event, error) {
	return db.indexed(tenant, key2(pCollection, tenant, collection))
}

// UserEvents returns every event inserted by userID in tenant, ascending timestamp then
// insertion order.
func (db *DB) UserEvents(tenant, userID string) ([]Event, error) {
	return db.indexed(tenant, key2(pByUser, tenant, userID))
}

// indexed returns the events an index prefix lists, in index order.
func (db *DB) indexed(tenant string, prefix []byte) ([]Event, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.ops.Done()
	s := db.snapshot()
	defer s.Close()
	it, err := s.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Event
	g := newEventGetter(s, tenant)
	for ok := it.First(); ok; ok = it.Next() {
		e, err := g.get(it.Value())
		if err != nil {
			return nil, fmt.Errorf("store: index names a missing event: %w", err)
		}
		out = append(out, e)
	}
	return out, it.Error()
}

// State returns, for each (event name, collection) of the tenant, the latest published event
// (highest Timestamp, then highest Order), sorted oldest first (Timestamp, then Order); plus
// the tenant's last Seq in the same snapshot, so a stream can subscribe first, read the
// state, then skip live events with Seq <= seq.
func (db *DB) State(tenant string) (events []Event, seq uint64, err error) {
	if err := db.enter(); err != nil {
		return nil, 0, err
	}
	defer db.ops.Done()
	db.mu.Lock()
	s := db.pdb.NewSnapshot()
	seq, err = db.lastSeqLocked(tenant)
	t := db.ticket
	db.mu.Unlock()
	defer s.Close()
	if err != nil {
		return nil, 0, err
	}
	db.waitDurable(t)
	prefix := key1(pState, tenant)
	it, err := s.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	type ref struct {
		ts    int64
		order uint64
		id    string
	}
	var refs []ref
	for ok := it.First(); ok; ok = it.Next() {
		ts, order, id, err := readStateVal(it.Value())
		if err != nil {
			return nil, 0, err
		}
		refs = append(refs, ref{ts, order, id})
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	slices.SortFunc(refs, func(a, b ref) int {
		if a.ts != b.ts {
			if a.ts < b.ts {
				return -1
			}
			return 1
		}
		switch {
		case a.order < b.order:
			return -1
		case a.order > b.order:
			return 1
		}
		return 0
	})
	events = make([]Event, 0, len(refs))
	g := newEventGetter(s, tenant)
	for _, r := range refs {
		e, err := g.get([]byte(r.id))
		if err != nil {
			return nil, 0, fmt.Errorf("store: state names a missing event: %w", err)
		}
		events = append(events, e)
	}
	return events, seq, nil
}

// Since calls fn for every published event of tenant with Seq > after, ascending Seq, then
// returns the last Seq it passed (or after). fn returning an error stops and returns it.
//
// An after beyond the tenant's last Seq (a Last-Event-ID from before the data was reset,
// or made up) returns that last Seq instead, so a stream that skips live events with
// Seq <= the returned value does not stay silent until the tenant catches up.
func (db *DB) Since(tenant string, after uint64, fn func(Event) error) (last uint64, err error) {
	if err := db.enter(); err != nil {
		return after, err
	}
	defer db.ops.Done()
	db.mu.Lock()
	s := db.pdb.NewSnapshot()
	seq, err := db.lastSeqLocked(tenant)
	t := db.ticket
	db.mu.Unlock()
	defer s.Close()
	if err != nil {
		return after, err
	}
	if after >= seq {
		return seq, nil
	}
	db.waitDurable(t)
	last = after
	prefix := key1(pPublished, tenant)
	it, err := s.NewIter(&pebble.IterOptions{LowerBound: pubKey(nil, tenant, after+1), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return last, err
	}
	defer it.Close()
	g := newEventGetter(s, tenant)
	for ok := it.First(); ok; ok = it.Next() {
		e, err := g.get(it.Value())
		if err != nil {
			return last, fmt.Errorf("store: publication index names a missing event: %w", err)
		}
		if err := fn(e); err != nil {
			return last, err
		}
		last = e.Seq
	}
	return last, it.Error()
}

// LastSeq returns the tenant's last publication Seq (0 if none).
func (db *DB) LastSeq(tenant string) (uint64, error) {
	if err := db.enter(); err != nil {
		return 0, err
	}
	defer db.ops.Done()
	db.mu.Lock()
	seq, err := db.lastSeqLocked(tenant)
	t := db.ticket
	db.mu.Unlock()
	db.waitDurable(t)
	return seq, err
}

// lastSeqLocked returns the tenant's last Seq, read from the end of its publication index
// the first time.
func (db *DB) lastSeqLocked(tenant string) (uint64, error) {
	if s, ok := db.seqs[tenant]; ok {
		return s, nil
	}
	prefix := key1(pPublished, tenant)
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var seq uint64
	if it.Last() {
		if seq, err = readSeqKey(it.Key()); err != nil {
			return 0, err
		}
	}
	if err := it.Error(); err != nil {
		return 0, err
	}
	db.seqs[tenant] = seq
	return seq, nil
}
