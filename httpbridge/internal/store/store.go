package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Options configure Open. The zero value is valid.
type Options struct {
	// OnPublish is called for every event as it becomes published (at Insert with publishNow,
	// or by PublishDue), AFTER its published flag and Seq are durable (synced), in Seq order
	// per tenant, never twice for one event, from one goroutine at a time (never concurrently).
	// It must not block for long (the API hands the event to the SSE hub and the bus): every
	// write waits for the OnPublish calls of the writes before it. It must not call the DB's
	// methods (they may wait for the sync it is part of: deadlock). nil = nothing is called.
	OnPublish func(Event)
	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

// DB is an open store. Its methods are safe for concurrent use.
//
// Writes go through one pipeline: under mu a write assigns its counters (Order, Seq) and
// commits its batch to pebble without waiting for the WAL sync, so the WAL order is the
// order of the counters; the publisher goroutine then takes every commit pending, makes them
// durable with one WAL sync (concurrent writers share it: group commit), calls OnPublish in
// commit order, and releases the writers. Readers read a pebble snapshot taken after every
// commit it contains is durable, so nothing a reader returns can be lost by a crash.
type DB struct {
	pdb       *pebble.DB
	onPublish func(Event)
	log       *slog.Logger

	// cmu guards closed and ops.Add: Close waits for the operations under way.
	cmu    sync.Mutex
	closed bool
	ops    sync.WaitGroup

	// mu serializes writes: counters, check-then-write sequences, commit order.
	mu      sync.Mutex
	order   uint64            // last Order assigned
	seqs    map[string]uint64 // per-tenant last Seq assigned (loaded lazily)
	ticket  uint64            // commits made so far
	others  uint64            // the last commit that was not commitEventsLocked's
	pending []*pending
	// roundMu is held by whoever runs a sync round (the publisher, or a writer in await);
	// roundBuf, the spare pending list, is theirs.
	roundMu  sync.Mutex
	roundBuf []*pending
	kick     chan struct{} // cap 1: tells the publisher there is work
	quit     chan struct{}
	pubDone  chan struct{}

	// dmu guards durable: the last ticket synced and announced through OnPublish.
	dmu     sync.Mutex
	dcond   *sync.Cond
	durable uint64

	// amu guards applied (index mode: the last stream sequence applied) and acond, closed
	// and replaced when applied moves.
	amu     sync.Mutex
	applied uint64
	acond   chan struct{}

	users userCache // users by id, for token checks

	syncs, synced atomic.Int64 // WAL syncs, and the commits they made durable (benchmarks)
	due           atomic.Int64 // entries of the due index: events scheduled, not yet published

	// Scratch buffers of the insert path, used under mu.
	ekey, key, val, id []byte
	json               bytes.Buffer
}

// pending is one commit waiting for its WAL sync.
type pending struct {
	ticket uint64
	pubs   []Event
	done   chan error // cap 1
	one    [1]Event   // pubs of an insert, without an allocation
}

// pendingPool recycles the pendings of inserts (the hot path); the other writes allocate.
var pendingPool = sync.Pool{New: func() any { return newPending(nil) }}

func newPending(pubs []Event) *pending { return &pending{pubs: pubs, done: make(chan error, 1)} }

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	pdb, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{log}})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	db := &DB{
		pdb:       pdb,
		onPublish: opts.OnPublish,
		log:       log,
		seqs:      make(map[string]uint64),
		kick:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		pubDone:   make(chan struct{}),
	}
	db.dcond = sync.NewCond(&db.dmu)
	v, closer, err := pdb.Get(metaOrderKey)
	switch {
	case err == nil:
		db.order, _, err = readU64(v)
		closer.Close()
		if err != nil {
			pdb.Close()
			return nil, fmt.Errorf("store: corrupt order counter: %w", err)
		}
	case !errors.Is(err, pebble.ErrNotFound):
		pdb.Close()
		return nil, err
	}
	if err := db.countDue(); err != nil {
		pdb.Close()
		return nil, err
	}
	cp, err := db.checkpointLocked()
	if err != nil {
		pdb.Close()
		return nil, fmt.Errorf("store: corrupt log checkpoint: %w", err)
	}
	db.applied = cp.Seq
	go db.publisher()
	return db, nil
}

// Close waits for the operations under way, flushes and closes the store; later calls of any
// method return ErrClosed.
func (db *DB) Close() error {
	db.cmu.Lock()
	if db.closed {
		db.cmu.Unlock()
		return ErrClosed
	}
	db.closed = true
	db.cmu.Unlock()
	db.ops.Wait()
	close(db.quit)
	<-db.pubDone
	if err := db.pdb.Flush(); err != nil {
		db.pdb.Close()
		return err
	}
	return db.pdb.Close()
}

// enter registers an operation; leave it with db.ops.Done().
func (db *DB) enter() error {
	db.cmu.Lock()
	defer db.cmu.Unlock()
	if db.closed {
		return ErrClosed
	}
	db.ops.Add(1)
	return nil
}

// commitUnlock commits b, releases mu (which the caller holds) and waits until the commit
// is durable: the write path of everything but inserts and publications. events tells a
// batch that writes events only (commitEventsLocked).
func (db *DB) commitUnlock(b *pebble.Batch, events bool) error {
	p := newPending(nil)
	var alone bool
	var err error
	if events {
		alone, err = db.commitEventsLocked(b, p)
	} else {
		alone, err = db.commitLocked(b, p)
	}
	db.mu.Unlock()
	if err != nil {
		return err
	}
	return db.await(p, alone)
}

// commitLocked commits b (without waiting for the WAL sync) and queues it as p; the caller
// unlocks mu, then calls await(p, alone). alone: p is the only commit pending.
func (db *DB) commitLocked(b *pebble.Batch, p *pending) (alone bool, err error) {
	if alone, err = db.commitEventsLocked(b, p); err == nil {
		db.others = db.ticket
	}
	return alone, err
}

// commitEventsLocked is commitLocked for a batch that writes events only (their records,
// indexes, state and counters: nothing userSnapshot reads), so that reading a user never
// waits for the sync of an insert.
func (db *DB) commitEventsLocked(b *pebble.Batch, p *pending) (alone bool, err error) {
	if err := b.Commit(pebble.NoSync); err != nil {
		return false, err
	}
	db.ticket++
	p.ticket = db.ticket
	db.pending = append(db.pending, p)
	return len(db.pending) == 1, nil
}

func (db *DB) kickPublisher() {
	select {
	case db.kick <- struct{}{}:
	default:
	}
}

// await waits until p's commit is durable and announced; alone is what the commit returned.
// A writer whose commit was the only one pending, with no sync round under way, runs the
// round itself: on a busy machine each goroutine hand-off costs a wait for a processor, and
// this spares two of them (to the publisher and back) on the way to an acknowledgement.
// Other commits are left to the publisher, which lets concurrent writers gather for one
// sync. (A round run here syncs whatever joined since: it takes every commit pending.)
func (db *DB) await(p *pending, alone bool) error {
	if alone && db.roundMu.TryLock() {
		db.round()
		db.roundMu.Unlock()
	} else {
		db.kickPublisher()
	}
	return <-p.done
}

// publisher makes pending commits durable, one WAL sync for all those that queued up while
// the last sync ran, then announces their publications in commit order.
func (db *DB) publisher() {
	defer close(db.pubDone)
	for {
		select {
		case <-db.kick:
		case <-db.quit:
			// Close runs once every operation ended: nothing can be pending, but a kick may
			// still be buffered.
			db.mu.Lock()
			n := len(db.pending)
			db.mu.Unlock()
			if n == 0 {
				return
			}
		}
		// Writers released by the last round are about to commit again: give them a chance
		// to join this sync while they keep coming.
		for n, i := db.pendingLen(), 0; i < 8; i++ {
			runtime.Gosched()
			m := db.pendingLen()
			if m == n {
				break
			}
			n = m
		}
		db.roundMu.Lock()
		db.round()
		db.roundMu.Unlock()
	}
}

// round makes the pending commits durable with one WAL sync, announces their publications
// in commit order, and releases their writers. Called with roundMu held: rounds never
// overlap, so OnPublish is never called concurrently and keeps commit order.
func (db *DB) round() {
	db.mu.Lock()
	batch := db.pending
	db.pending = db.roundBuf[:0]
	db.mu.Unlock()
	defer func() { db.roundBuf = batch[:0] }()
	if len(batch) == 0 {
		return
	}
	// A synced WAL record makes every record before it durable too: the WAL is one
	// append-only file, fsynced up to the synced record (and a WAL rotated meanwhile is
	// synced when it is closed). LogData writes a record that touches no key.
	// (pebble treats a failed sync as fatal and exits; the error path is for form.)
	err := db.pdb.LogData(nil, pebble.Sync)
	db.syncs.Add(1)
	db.synced.Add(int64(len(batch)))
	if err != nil {
		db.log.Error("store: WAL sync failed", "error", err)
	} else if db.onPublish != nil {
		for _, p := range batch {
			for _, e := range p.pubs {
				db.onPublish(e)
			}
		}
	}
	db.dmu.Lock()
	db.durable = batch[len(batch)-1].ticket
	db.dcond.Broadcast()
	db.dmu.Unlock()
	for i, p := range batch {
		p.done <- err
		batch[i] = nil
	}
}

func (db *DB) pendingLen() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return len(db.pending)
}

// snapshot returns a view of the store that contains only durable commits (it waits for
// the sync of those it would otherwise contain).
func (db *DB) snapshot() *pebble.Snapshot {
	db.mu.Lock()
	s := db.pdb.NewSnapshot()
	t := db.ticket
	db.mu.Unlock()
	db.waitDurable(t)
	return s
}

// userSnapshot is snapshot for reads of what event commits do not write (users): it waits
// only for the sync of the other commits it contains. Under a steady stream of inserts an
// authentication then costs no fsync of its own.
func (db *DB) userSnapshot() *pebble.Snapshot {
	db.mu.Lock()
	s := db.pdb.NewSnapshot()
	t := db.others
	db.mu.Unlock()
	db.waitDurable(t)
	return s
}

func (db *DB) waitDurable(t uint64) {
	db.dmu.Lock()
	for db.durable < t {
		db.dcond.Wait()
	}
	db.dmu.Unlock()
}

// quietLogger keeps pebble's informational chatter out of the server log; errors still go
// to the store's logger, and a fatal error (pebble's answer to a failed WAL write or sync,
// after which nothing acknowledged could be trusted) ends the process as pebble's own
// logger would.
type quietLogger struct{ log *slog.Logger }

func (quietLogger) Infof(string, ...any) {}
func (l quietLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf("pebble: "+format, args...))
}
func (l quietLogger) Fatalf(format string, args ...any) {
	l.log.Error(fmt.Sprintf("pebble: "+format, args...))
	os.Exit(1)
}
