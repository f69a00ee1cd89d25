package bus

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Results of queue.push.
const (
	pushOK     = iota
	pushFull   // the queue was full; a non-blocking queue closed itself with ErrQueueOverflow
	pushClosed // the queue was closed before
)

// queue is a client's bounded outgoing queue. Senders append under mu; the receiver swaps the
// whole pending slice out under mu and then reads its batch without locking, so a receiver
// that keeps up pays for the lock once per batch rather than once per frame, and the memory a
// queue holds follows its real depth rather than its limit (a Go channel would allocate the
// full limit for every client up front).
type queue struct {
	mu      sync.Mutex
	in      []Frame // pending, not yet handed to the receiver
	limit   int
	waiting bool          // the receiver sleeps on signal
	signal  chan struct{} // capacity 1: wakes a sleeping receiver
	done    chan struct{} // closed with the queue
	space   chan struct{} // closed when the receiver takes a batch: wakes blocked senders
	reason  error         // why the queue closed; nil while open
	closed  atomic.Bool   // reason != nil, readable without the lock
	dropped bool          // closed with loss: pending frames were discarded
	block   time.Duration // > 0: senders wait this long for space instead of overflowing
	discard bool          // accept and drop every frame (a client that never reads)
	wFrames uint64        // frames queued, guarded by mu
	wBytes  uint64        // wire body bytes queued, guarded by mu

	rmu   sync.Mutex // the receiver side
	out   []Frame    // the batch being read
	pos   int
	left  atomic.Int64 // about len(out)-pos, for statistics; see recv
	small int          // consecutive batches far smaller than the buffer that held them
}

func (q *queue) init(limit int, block time.Duration, discard bool) {
	q.limit = limit
	q.block = block
	q.discard = discard
	q.signal = make(chan struct{}, 1)
	q.done = make(chan struct{})
}

// push appends f without waiting. A full queue that does not block its senders closes itself
// at once, so that no later frame slips in behind the lost one.
func (q *queue) push(f *Frame, size int) int {
	q.mu.Lock()
	if q.reason != nil {
		q.mu.Unlock()
		return pushClosed
	}
	if len(q.in) >= q.limit && !q.discard {
		if q.block <= 0 {
			q.closeLocked(ErrQueueOverflow, true)
		}
		q.mu.Unlock()
		return pushFull
	}
	q.appendLocked(f, size)
	q.mu.Unlock()
	return pushOK
}

func (q *queue) appendLocked(f *Frame, size int) {
	q.wFrames++
	q.wBytes += uint64(size)
	if q.discard {
		return
	}
	if f.ref != nil {
		f.ref.retain() // the router holds it too, so it cannot be at zero here
	}
	q.in = append(q.in, *f)
	if q.waiting {
		q.waiting = false
		select {
		case q.signal <- struct{}{}:
		default:
		}
	}
}

// count adds a frame handed to the receiver without queueing it to the statistics.
func (q *queue) count(size int) {
	q.mu.Lock()
	q.wFrames++
	q.wBytes += uint64(size)
	q.mu.Unlock()
}

// pushWait appends f, waiting up to q.block for space. It returns pushFull on timeout.
func (q *queue) pushWait(f *Frame, size int) int {
	var timer *time.Timer
	for {
		q.mu.Lock()
		if q.reason != nil {
			q.mu.Unlock()
			return pushClosed
		}
		if len(q.in) < q.limit {
			q.appendLocked(f, size)
			q.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return pushOK
		}
		if q.space == nil {
			q.space = make(chan struct{})
		}
		space := q.space
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(q.block)
		}
		select {
		case <-space:
		case <-q.done:
		case <-timer.C:
			return pushFull
		}
	}
}

// close closes the queue with reason; drop discards what is pending. The first reason wins.
func (q *queue) close(reason error, drop bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closeLocked(reason, drop)
}

func (q *queue) closeLocked(reason error, drop bool) bool {
	if drop && !q.dropped {
		// A dropping close also empties a queue that an earlier close kept readable.
		clear(q.in)
		q.in = nil
		q.dropped = true
	}
	if q.reason != nil {
		return false
	}
	q.reason = reason
	q.closed.Store(true)
	close(q.done)
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	return true
}

// err returns why the queue closed, or nil.
func (q *queue) err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.reason
}

// recv returns the next frame, waiting for one. After the queue closes it returns what was
// pending (unless the close dropped it), then the reason.
func (q *queue) recv(ctx context.Context) (Frame, error) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	for {
		if q.pos < len(q.out) && !q.closed.Load() {
			return q.pop(), nil
		}
		q.mu.Lock()
		if q.dropped {
			q.mu.Unlock()
			clear(q.out)
			q.out, q.pos = nil, 0
			q.left.Store(0)
			return Frame{}, q.reason
		}
		if q.pos < len(q.out) {
			q.mu.Unlock()
			return q.pop(), nil // closed, but what was queued stays readable
		}
		if len(q.in) > 0 {
			q.takeLocked()
			q.mu.Unlock()
			continue
		}
		if q.reason != nil {
			q.mu.Unlock()
			return Frame{}, q.reason
		}
		q.waiting = true
		q.mu.Unlock()
		if err := q.sleep(ctx); err != nil {
			return Frame{}, err
		}
	}
}

// sleep waits for a push, the close, or the end of ctx; the caller has just set waiting
// under mu.
func (q *queue) sleep(ctx context.Context) error {
	select {
	case <-q.signal:
	case <-q.done:
	case <-ctx.Done():
		q.mu.Lock()
		q.waiting = false
		q.mu.Unlock()
		return ctx.Err()
	}
	return nil
}

// pop takes the next frame of the reader's batch; the caller holds rmu and has checked that
// there is one.
func (q *queue) pop() Frame {
	f := q.out[q.pos]
	q.out[q.pos] = Frame{} // handed out: the queue no longer keeps its payload
	q.pos++
	q.left.Store(int64(len(q.out) - q.pos))
	return f
}

// recvBatch appends to dst every frame available now, waiting for at least one, up to max
// frames (max < 1: no limit). After the queue closes it behaves as recv.
func (q *queue) recvBatch(ctx context.Context, dst []Frame, max int) ([]Frame, error) {
	f, err := q.recv(ctx)
	if err != nil {
		return dst, err
	}
	return q.take(append(dst, f), max), nil
}

// take appends to dst what is queued now, up to max frames (max < 1: no limit), without
// waiting and without marking the receiver as waiting, so that it never consumes a wake-up
// meant for a receiver asleep in wait or recv.
func (q *queue) take(dst []Frame, max int) []Frame {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	for max < 1 || len(dst) < max {
		if q.pos == len(q.out) {
			q.mu.Lock()
			if len(q.in) == 0 || q.dropped {
				q.mu.Unlock()
				break
			}
			q.takeLocked()
			q.mu.Unlock()
		}
		if q.closed.Load() && q.isDropped() {
			break
		}
		n := len(q.out) - q.pos
		if max >= 1 && n > max-len(dst) {
			n = max - len(dst)
		}
		dst = append(dst, q.out[q.pos:q.pos+n]...)
		clear(q.out[q.pos : q.pos+n]) // handed out: the queue no longer keeps their payloads
		q.pos += n
		q.left.Store(int64(len(q.out) - q.pos))
	}
	return dst
}

// wait returns once a frame is queued (it takes none), once the queue is closed, or with
// ctx's error.
func (q *queue) wait(ctx context.Context) error {
	for {
		q.rmu.Lock()
		ready := q.pos < len(q.out)
		q.rmu.Unlock()
		q.mu.Lock()
		if ready || len(q.in) > 0 || q.reason != nil {
			q.mu.Unlock()
			return nil
		}
		q.waiting = true
		q.mu.Unlock()
		if err := q.sleep(ctx); err != nil {
			return err
		}
	}
}

func (q *queue) isDropped() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// A batch buffer above shrinkAbove frames is let go once shrinkAfter batches in a row have
// used less than an eighth of it, so that a burst does not pin its memory for the life of the
// client, while a queue whose depth merely fluctuates keeps its buffers.
const (
	shrinkAbove = 4096
	shrinkAfter = 64
)

// takeLocked hands the pending frames to the receiver as its next batch.
func (q *queue) takeLocked() {
	old := q.out
	clear(old) // drop references to payloads already read
	q.out, q.pos = q.in, 0
	q.left.Store(int64(len(q.out)))
	if cap(old) > shrinkAbove && len(q.out) < cap(old)/8 {
		if q.small++; q.small >= shrinkAfter {
			old, q.small = nil, 0
		}
	} else {
		q.small = 0
	}
	q.in = old[:0]
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
}

// len returns the number of frames queued and not yet read.
func (q *queue) len() int {
	q.mu.Lock()
	n := len(q.in)
	q.mu.Unlock()
	return n + int(q.left.Load())
}
