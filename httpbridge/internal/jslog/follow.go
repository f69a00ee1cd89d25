package jslog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// maxBatch bounds the records applied in one pebble batch.
const maxBatch = 512

// PrepareIndex makes db an index of this log: a store that has none, or one built from
// another epoch of the stream, or one whose next record the stream no longer has, is emptied
// (its users and settings stay) to be rebuilt from the stream's first record. It returns
// whether it did so.
func (l *Log) PrepareIndex(ctx context.Context, db *store.DB) (rebuilt bool, err error) {
	cp, err := db.Checkpoint()
	if err != nil {
		return false, err
	}
	why := ""
	switch {
	case cp.Epoch == "":
		// A single node's store holds the only copy of its events: never wipe it.
		if has, err := db.HasEvents(); err != nil || has {
			if err == nil {
				err = ErrSingleNodeData
			}
			return false, err
		}
		why = "no index yet"
	case cp.Epoch != l.epoch:
		why = "the stream was made anew (another epoch)"
	default:
		ctx, cancel := context.WithTimeout(ctx, l.timeout)
		info, err := l.stream.Info(ctx)
		cancel()
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if info.State.FirstSeq > cp.Seq+1 && info.State.Msgs > 0 {
			why = fmt.Sprintf("the stream starts at %d, after the index's checkpoint %d", info.State.FirstSeq, cp.Seq)
		}
	}
	if why == "" {
		return false, nil
	}
	l.log.Info("jslog: building this node's event index from the stream", "reason", why, "epoch", l.epoch)
	return true, db.Reset(l.epoch)
}

// Follower timing. A consumer is fast while it works but can stop delivering without an
// error when the server it lives on dies or the stream's leader changes (seen after killing
// the leader: indexes stuck until a watchdog acted, 12 s after the kill). So the follower
// also reads the stream directly (a direct get, answered by any replica without the stream's
// or JetStream's meta leader) whenever the index stands still; what it finds there is applied
// at once, and a consumer that stays silent meanwhile is replaced.
const (
	heartbeat     = time.Second            // the consumer's idle heartbeat: two missed end it
	createTimeout = 2 * time.Second        // one attempt to make a consumer (the meta leader answers it)
	tick          = 50 * time.Millisecond  // how often the follower looks at the index
	probeIdle     = 500 * time.Millisecond // a direct read when the index stood still this long
	stallAfter    = time.Second            // a consumer silent this long while replicas had more is replaced
	directTimeout = time.Second            // one direct get
)

// Follow applies the stream to db, in order, from db's checkpoint, until ctx ends; it
// recovers by itself from errors. Call PrepareIndex first.
func (l *Log) Follow(ctx context.Context, db *store.DB) {
	f := &follower{l: l, db: db, made: make(chan made, 1)}
	f.run(ctx)
}

// Want tells the follower that a caller waits for the index to reach seq (a write this node
// made): while the index is behind it, the follower reads directly at once rather than trust
// a consumer that may be stalled.
func (l *Log) Want(seq uint64) {
	for {
		w := l.wanted.Load()
		if seq <= w || l.wanted.CompareAndSwap(w, seq) {
			return
		}
	}
}

type next struct {
	m   jetstream.Msg
	err error
}

// feed is a consumer being read: messages arrive on ch until it fails or stop is called.
type feed struct {
	name string
	ch   chan next
	stop func()
	cseq uint64    // the consumer sequence last delivered: each is the one before plus one
	last time.Time // when it last delivered (or started)
}

type made struct {
	f   *feed
	err error
}

type follower struct {
	l        *Log
	db       *store.DB
	feed     *feed // nil while none
	making   bool  // a consumer is being made (its result comes on made)
	made     chan made
	retryAt  time.Time // no new consumer before this (after failures)
	failures int
	recs     []store.Record
}

func (f *follower) run(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	defer func() {
		f.drop()
		if f.making {
			if r := <-f.made; r.f != nil {
				r.f.stop()
			}
		}
	}()
	f.recs = make([]store.Record, 0, maxBatch)
	lastApplied, lastProbe := f.db.Applied(), time.Time{}
	for {
		if f.feed == nil && !f.making && !time.Now().Before(f.retryAt) {
			f.making = true
			go func(start uint64) {
				fd, err := f.l.newFeed(ctx, start)
				f.made <- made{fd, err}
			}(f.db.Applied() + 1)
		}
		var msgs <-chan next
		if f.feed != nil {
			msgs = f.feed.ch
		}
		select {
		case <-ctx.Done():
			return
		case r := <-f.made:
			f.making = false
			if r.err != nil {
				f.failures++
				f.retryAt = time.Now().Add(min(time.Duration(f.failures)*100*time.Millisecond, time.Second))
				if f.failures == 1 || f.failures%30 == 0 {
					f.l.log.Warn("jslog: making a consumer of the event stream; reading it directly meanwhile", "err", r.err, "attempts", f.failures, "applied", f.db.Applied())
				}
				continue
			}
			if f.failures > 0 {
				f.l.log.Info("jslog: following the event stream again", "attempts", f.failures, "applied", f.db.Applied())
			}
			f.failures, f.feed = 0, r.f
		case n := <-msgs:
			if err := f.consume(n); err != nil {
				if errors.Is(err, store.ErrClosed) {
					return
				}
				f.l.log.Warn("jslog: the event stream's consumer ended; making another", "err", err, "applied", f.db.Applied())
				f.drop()
			}
		case now := <-t.C:
			a := f.db.Applied()
			if a != lastApplied {
				lastApplied = a
				continue
			}
			// Without a consumer, or with a write of this node waiting, read directly at every
			// tick; otherwise only when the index stood still a while.
			if f.feed != nil && f.l.wanted.Load() <= a && now.Sub(lastProbe) < probeIdle {
				continue
			}
			lastProbe = now
			got, err := f.direct(ctx)
			if errors.Is(err, store.ErrClosed) {
				return
			}
			if got > 0 {
				lastApplied = f.db.Applied()
				if f.feed != nil && now.Sub(f.feed.last) >= stallAfter {
					f.l.log.Warn("jslog: the event stream's consumer stopped delivering; making another", "consumer", f.feed.name, "silent", now.Sub(f.feed.last).Round(time.Millisecond), "applied", lastApplied)
					f.drop()
				}
			}
		}
	}
}

// drop stops the current consumer, if any.
func (f *follower) drop() {
	if f.feed != nil {
		f.feed.stop()
		f.feed = nil
	}
}

// consume applies n and whatever else the consumer has ready, in one batch.
func (f *follower) consume(n next) error {
	fd := f.feed
	recs := f.recs[:0]
	var ferr error
	for {
		if n.err != nil {
			ferr = n.err
			break
		}
		meta, err := n.m.Metadata()
		if err != nil {
			f.l.log.Error("jslog: a stream message without metadata", "subject", n.m.Subject(), "err", err)
		} else {
			if meta.Sequence.Consumer != fd.cseq+1 {
				ferr = fmt.Errorf("consumer %s delivered its message %d after %d: one was lost on the way", fd.name, meta.Sequence.Consumer, fd.cseq)
				break
			}
			fd.cseq = meta.Sequence.Consumer
			recs = append(recs, f.l.record(n.m.Subject(), meta.Sequence.Stream, n.m.Headers(), n.m.Data()))
		}
		if len(recs) == maxBatch {
			break
		}
		select {
		case n = <-fd.ch:
			continue
		default:
		}
		break
	}
	fd.last = time.Now()
	if len(recs) > 0 {
		// Records the index has (read directly meanwhile) are skipped by Apply.
		if err := f.db.Apply(f.l.epoch, recs); err != nil {
			return err
		}
	}
	return ferr
}

// direct reads, by direct gets, what the stream's replicas have past the index, and applies
// it; it returns how many records it applied.
func (f *follower) direct(ctx context.Context) (int, error) {
	total := 0
	for total < 8*maxBatch && ctx.Err() == nil {
		recs := f.recs[:0]
		seq := f.db.Applied() + 1
		var gerr error
		for len(recs) < maxBatch {
			dctx, cancel := context.WithTimeout(ctx, directTimeout)
			m, err := f.l.stream.GetMsg(dctx, seq, jetstream.WithGetMsgSubject(subjects))
			cancel()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgNotFound) {
					gerr = err
				}
				break
			}
			recs = append(recs, f.l.record(m.Subject, m.Sequence, m.Header, m.Data))
			seq = m.Sequence + 1
		}
		if len(recs) > 0 {
			if err := f.db.Apply(f.l.epoch, recs); err != nil {
				return total, err
			}
			total += len(recs)
		}
		if len(recs) < maxBatch {
			return total, gerr
		}
	}
	return total, nil
}

// newFeed makes a consumer of the stream from seq start and starts reading it.
func (l *Log) newFeed(ctx context.Context, start uint64) (*feed, error) {
	cctx, cancel := context.WithTimeout(ctx, createTimeout)
	cons, err := l.js.CreateConsumer(cctx, Stream, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
		AckPolicy:     jetstream.AckNonePolicy,
		Replicas:      1,
		MemoryStorage: true,
		// A consumer whose creation answer was lost, or whose reader is gone, goes away.
		InactiveThreshold: 30 * time.Second,
	})
	cancel()
	if err != nil {
		return nil, err
	}
	name := cons.CachedInfo().Name
	it, err := cons.Messages(jetstream.PullMaxMessages(maxBatch), jetstream.PullExpiry(4*time.Second),
		jetstream.PullHeartbeat(heartbeat), jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		l.deleteConsumer(name)
		return nil, err
	}
	rctx, rcancel := context.WithCancel(ctx)
	fd := &feed{name: name, ch: make(chan next, maxBatch), last: time.Now()}
	fd.stop = func() {
		rcancel()
		it.Stop()
		l.deleteConsumer(name)
	}
	go func() {
		for {
			m, err := it.Next()
			select {
			case fd.ch <- next{m, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return fd, nil
}

// deleteConsumer removes a consumer the follower no longer reads, in the background (when
// its server is gone the request fails, and the inactivity threshold removes it later).
func (l *Log) deleteConsumer(name string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.js.DeleteConsumer(ctx, Stream, name)
	}()
}

// record decodes a stream message into an index record; one that is no rtbus record is
// logged and kept with no kind, so that the checkpoint moves past it.
func (l *Log) record(subject string, seq uint64, h nats.Header, data []byte) store.Record {
	r, ok := decode(subject, seq, h, data)
	if !ok {
		l.log.Error("jslog: skipping a stream message that is no rtbus record", "subject", subject, "seq", seq)
		r = store.Record{Seq: seq}
	}
	return r
}
