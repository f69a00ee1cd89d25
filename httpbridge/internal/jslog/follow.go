package jslog

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// Follow applies the stream to db, in order, from db's checkpoint, until ctx ends; it
// reconnects by itself after errors. Call PrepareIndex first.
func (l *Log) Follow(ctx context.Context, db *store.DB) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := l.follow(ctx, db)
		if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			return
		}
		if time.Since(start) > 10*time.Second {
			wait = 100 * time.Millisecond // it worked a while: this is a new failure
		}
		l.log.Warn("jslog: reading the event stream; retrying", "err", err, "applied", db.Applied())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

type next struct {
	m   jetstream.Msg
	err error
}

// Watchdog timing: how often the follower's progress is looked at, and how long the index
// may stand still while the stream has more before the follower is started anew.
const (
	watchEvery = 2 * time.Second
	stuckAfter = 6 * time.Second
)

// watch ends a follow whose consumer has stopped delivering while the stream goes on. An
// ordered consumer whose server was killed can wait for messages that never come, without
// an error (seen after killing the stream's leader: an index stuck for minutes, every
// insert on that node answered 503); a new consumer from the checkpoint gets them.
func (l *Log) watch(ctx context.Context, db *store.DB, stuck chan<- error) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	last, since := db.Applied(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a := db.Applied()
		if a != last {
			last, since = a, time.Now()
			continue
		}
		if time.Since(since) < stuckAfter {
			continue
		}
		ictx, cancel := context.WithTimeout(ctx, l.timeout)
		info, err := l.stream.Info(ictx)
		cancel()
		since = time.Now()
		if err != nil || info.State.LastSeq <= a {
			continue // no quorum (a new consumer would do no better), or nothing to read
		}
		pair := [2]uint64{a, info.State.LastSeq}
		l.stuckMu.Lock()
		again := l.stuckAt == pair
		l.stuckAt = pair
		l.stuckMu.Unlock()
		if again {
			continue // restarted for this already: what is left is not readable
		}
		stuck <- fmt.Errorf("the index stood at %d for %v while the stream is at %d", a, stuckAfter, info.State.LastSeq)
		return
	}
}

func (l *Log) follow(ctx context.Context, db *store.DB) error {
	// Everything this follow starts ends with it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cons, err := l.js.OrderedConsumer(ctx, Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   db.Applied() + 1,
		// One attempt per reset: nats.go otherwise retries a failed re-creation with its own
		// backoff, up to 10 s apart, so that an index cut off from JetStream's quorum for a
		// while stays behind for up to 10 s more after the quorum is back. A failed reset
		// ends this follow; Follow tries again within a second, from the index's checkpoint.
		MaxResetAttempts: 1,
	})
	if err != nil {
		return err
	}
	// The consumer lives on one server: when that server goes, the missing heartbeats (two,
	// at 1 s) make the ordered consumer start a new one where it stopped, within seconds.
	it, err := cons.Messages(jetstream.PullMaxMessages(maxBatch), jetstream.PullExpiry(4*time.Second), jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return err
	}
	defer it.Stop()
	ch := make(chan next, maxBatch)
	go func() {
		for {
			m, err := it.Next()
			select {
			case ch <- next{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	stuck := make(chan error, 1)
	go l.watch(ctx, db, stuck)
	recs := make([]store.Record, 0, maxBatch)
	for {
		recs = recs[:0]
		var n next
		select {
		case n = <-ch:
		case err := <-stuck:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		var ferr error
		for {
			if n.err != nil {
				ferr = n.err
				break
			}
			if r, ok := l.record(n.m); ok {
				recs = append(recs, r)
			}
			if len(recs) == maxBatch {
				break
			}
			select {
			case n = <-ch:
				continue
			default:
			}
			break
		}
		if len(recs) > 0 {
			if err := db.Apply(l.epoch, recs); err != nil {
				return err
			}
		}
		if ferr != nil {
			return ferr
		}
	}
}

// record decodes a stream message; ok is false only for a message without metadata.
func (l *Log) record(m jetstream.Msg) (r store.Record, ok bool) {
	meta, err := m.Metadata()
	if err != nil {
		l.log.Error("jslog: a stream message without metadata", "subject", m.Subject(), "err", err)
		return store.Record{}, false
	}
	r, ok = decode(m.Subject(), meta.Sequence.Stream, m.Headers(), m.Data())
	if !ok {
		// Kept with no kind, so that the checkpoint moves past it.
		l.log.Error("jslog: skipping a stream message that is no rtbus record", "subject", m.Subject(), "seq", meta.Sequence.Stream)
		r = store.Record{Seq: meta.Sequence.Stream}
	}
	return r, true
}
