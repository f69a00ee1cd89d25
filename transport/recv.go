package transport

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/rtbus/rtbus/bus"
)

// The Go client's receive path. One goroutine reads the socket into a slab, parses every
// complete frame of each read, settles acks on the spot and hands data frames over a batch
// at a time; a reader of the client takes a whole batch under one lock and then returns its
// frames one by one without locking. A delivered frame therefore costs neither a channel
// operation nor an allocation of its own: its Sender, Topic and Payload alias the slab,
// which is never written again once a frame points into it, and a fresh slab is taken only
// when the current one is nearly used up.

// slabSize is the size of a receive slab. A frame a receiver keeps holds its whole slab, so
// it is a compromise between allocations per frame and memory held by kept frames.
const slabSize = 64 << 10

// A receive slab carries a bus.Ref: the reader holds its current slab, and every frame parsed
// from it holds it once more until the receiver calls Frame.Release. A slab whose frames have
// all been released returns to recvSlabs; one with a frame never released (kept, or handed
// to a hook) is left to the garbage collector.
type recvSlab struct {
	buf []byte
	ref *bus.Ref
}

var recvSlabs sync.Pool

func init() { recvSlabs.New = newRecvSlab }

func newRecvSlab() any {
	s := &recvSlab{buf: make([]byte, slabSize)}
	s.ref = bus.NewRef(func() {
		s.ref.Reset()
		recvSlabs.Put(s)
	})
	return s
}

// minRead is the least room a read gets before a new slab is taken.
const minRead = 4 << 10

// inbox holds delivered frames between the socket reader and the client's readers.
type inbox struct {
	mu      sync.Mutex
	in      []bus.Frame   // parsed, not yet taken by a reader
	limit   int           // frames in at most before the socket reader waits
	waiting bool          // a reader sleeps on signal
	signal  chan struct{} // capacity 1: wakes a sleeping reader
	full    bool          // the socket reader sleeps on space
	space   chan struct{} // capacity 1: wakes the socket reader

	rmu sync.Mutex // the readers' side
	out []bus.Frame
	pos int
}

func (q *inbox) init(limit int) {
	q.limit = limit
	q.signal = make(chan struct{}, 1)
	q.space = make(chan struct{}, 1)
}

// push appends batch, waiting while limit frames are already waiting; false if done closed
// meanwhile.
func (q *inbox) push(batch []bus.Frame, done <-chan struct{}) bool {
	q.mu.Lock()
	for len(q.in) >= q.limit {
		q.full = true
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-done:
			return false
		}
		q.mu.Lock()
	}
	q.in = append(q.in, batch...)
	if q.waiting {
		q.waiting = false
		wake(q.signal)
	}
	q.mu.Unlock()
	return true
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// take appends to dst what is waiting, at most max (max < 1: all), or reports false with
// nothing waiting. A reader that finds nothing is marked waiting, so that the next push
// signals it.
func (q *inbox) take(dst []bus.Frame, max int) ([]bus.Frame, bool) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	if q.pos == len(q.out) {
		q.mu.Lock()
		if len(q.in) == 0 {
			q.waiting = true
			q.mu.Unlock()
			return dst, false
		}
		clear(q.out) // let the frames already returned go
		q.out, q.in, q.pos = q.in, q.out[:0], 0
		if q.full {
			q.full = false
			wake(q.space)
		}
		q.mu.Unlock()
	}
	n := len(q.out) - q.pos
	if max > 0 && n > max {
		n = max
		// Frames are left: should another reader be asleep, it must not sleep on them. With
		// one reader this costs a spurious wake-up later, not a lost one.
		wake(q.signal)
	}
	dst = append(dst, q.out[q.pos:q.pos+n]...)
	clear(q.out[q.pos : q.pos+n]) // handed out: an idle client keeps no payload it was given
	q.pos += n
	return dst, true
}

// recv is Recv and RecvBatch: frames received before the client stopped stay readable.
func (c *Client) recv(ctx context.Context, dst []bus.Frame, max int) ([]bus.Frame, error) {
	for {
		var ok bool
		if dst, ok = c.inbox.take(dst, max); ok {
			return dst, nil
		}
		select {
		case <-c.inbox.signal:
		case <-c.done:
			if dst, ok = c.inbox.take(dst, max); ok {
				return dst, nil
			}
			return dst, c.err
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

// read parses what the broker sends until the connection ends.
func (c *Client) read() {
	var hook func(*bus.Frame) bool
	hooked := new(bus.Frame) // what hook sees: one for all, so that a frame need not escape
	slab := recvSlabs.Get().(*recvSlab)
	defer func() {
		if slab != nil {
			slab.ref.Release()
		}
	}()
	buf := slab.buf
	var start, end int // buf[start:end] is read and not yet parsed
	shared := false    // a delivered frame points into buf
	var batch []bus.Frame
	next := func() []byte {
		if start == end && !shared {
			start, end = 0, 0 // nothing refers to buf: reuse it from the start
		}
		if need := c.frameNeed(buf[start:end]); len(buf)-start < need || len(buf)-end < minRead {
			var next *recvSlab
			if need <= slabSize {
				next = recvSlabs.Get().(*recvSlab)
			} else {
				next = &recvSlab{buf: make([]byte, need)} // one huge frame: not recycled
			}
			end = copy(next.buf, buf[start:end])
			if slab != nil {
				slab.ref.Release() // the frames parsed from it hold it still
			}
			slab, buf, start, shared = next, next.buf, 0, false
			if slab.ref == nil {
				slab = nil
			}
		}
		return buf[end:]
	}
	step := func(n int) stepResult {
		end += n
		result := stepMore
		if hook == nil {
			if h := c.hook.Load(); h != nil {
				hook = *h
			}
		}
		for end-start >= serverHeaderLen {
			h := buf[start : start+serverHeaderLen]
			switch h[0] {
			case kindPing:
				start += serverHeaderLen
				continue
			case kindAck:
				// The frames before an ack are its operation's effects: readable first.
				if len(batch) > 0 {
					if !c.inbox.push(batch, c.done) {
						return stepStop
					}
					clear(batch)
					batch = batch[:0]
				}
				c.ack(binary.LittleEndian.Uint32(h[1:5]), h[5])
				start += serverHeaderLen
				if start == end {
					result = stepQuiet // what the broker had for us ended with an ack
				}
				continue
			}
			size := binary.LittleEndian.Uint32(h[1:5])
			if uint64(size) > uint64(c.maxFrame) {
				c.stop(fmt.Errorf("transport: frame of %d bytes from the broker, limit %d: %w: %w", size, c.maxFrame, bus.ErrBadData, bus.ErrDisconnected))
				return stepStop
			}
			if end-start-serverHeaderLen < int(size) {
				break
			}
			b := start + serverHeaderLen
			body := buf[b : b+int(size) : b+int(size)]
			f, ok := parseDelivery(bus.Kind(h[0]), body, h[5] != 0)
			if !ok {
				c.stop(fmt.Errorf("transport: malformed frame from the broker: %w: %w", bus.ErrBadData, bus.ErrDisconnected))
				return stepStop
			}
			shared = true
			start = b + int(size)
			if slab != nil {
				slab.ref.Attach(&f)
			}
			if hook != nil {
				*hooked = f
				consumed := hook(hooked)
				*hooked = bus.Frame{}
				if consumed {
					continue
				}
			}
			batch = append(batch, f)
		}
		if len(batch) > 0 {
			if !c.inbox.push(batch, c.done) {
				return stepStop
			}
			clear(batch)
			batch = batch[:0]
		}
		return result
	}
	if err := c.nc.pump(next, step); err != nil {
		c.stop(fmt.Errorf("transport: connection lost: %v: %w", err, bus.ErrDisconnected))
	}
}

// frameNeed is the room the frame starting p needs in the slab: its header and body, or a
// header's worth while the header is incomplete.
func (c *Client) frameNeed(p []byte) int {
	if len(p) < serverHeaderLen || p[0] == kindPing || p[0] == kindAck {
		return serverHeaderLen
	}
	size := binary.LittleEndian.Uint32(p[1:5])
	if uint64(size) > uint64(c.maxFrame) {
		return serverHeaderLen // refused by the parser before anything is allocated
	}
	return serverHeaderLen + int(size)
}

// parseDelivery decodes a broker frame body (WIRE.md §4); the strings alias body.
func parseDelivery(kind bus.Kind, body []byte, realtime bool) (bus.Frame, bool) {
	f := bus.Frame{Kind: kind, Realtime: realtime}
	var ok bool
	if f.Sender, body, ok = cutText(body); !ok {
		return f, false
	}
	switch kind {
	case bus.KindPublish:
		if f.Topic, body, ok = cutText(body); !ok {
			return f, false
		}
	case bus.KindMessage, bus.KindBroadcast:
	default:
		return f, false
	}
	f.Payload = body
	return f, true
}
