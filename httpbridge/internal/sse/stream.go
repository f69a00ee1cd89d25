package sse

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// stream is the hub's side of one Serve call.
type stream struct {
	tenant, user string
	tidx         int // index in Hub.tenants[tenant], under Hub.mu

	notify chan struct{} // capacity 1: something was queued, or the stream failed

	mu    sync.Mutex
	q     []*item // pending, oldest first
	ka    bool    // a keep-alive is pending
	err   error   // set once: why the stream ends
	abort func()  // unblocks a write in progress; nil once Serve returns

	// written counts completed writes; writing is set during one. The keep-alive loop reads
	// them to spot idle and stuck streams (lastSeen is its own, read and written only there).
	written  atomic.Uint64
	writing  atomic.Bool
	lastSeen uint64
	stuck    bool
}

func (s *stream) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *stream) push(it *item, limit int) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	if len(s.q) >= limit {
		s.failLocked(ErrSlow)
		s.mu.Unlock()
		return
	}
	s.q = append(s.q, it)
	s.mu.Unlock()
	s.signal()
}

func (s *stream) fail(err error) {
	s.mu.Lock()
	s.failLocked(err)
	s.mu.Unlock()
}

func (s *stream) failLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	clear(s.q)
	s.q = nil
	if s.abort != nil {
		s.abort()
	}
	s.signal()
}

// tick runs from the keep-alive loop.
func (s *stream) tick() {
	n := s.written.Load()
	idle := n == s.lastSeen
	s.lastSeen = n
	if !idle {
		s.stuck = false
		return
	}
	if s.writing.Load() {
		if s.stuck { // no write completed during two ticks: at least half KeepAlive stuck
			s.fail(ErrSlow)
		}
		s.stuck = true
		return
	}
	s.mu.Lock()
	s.ka = true
	s.mu.Unlock()
	s.signal()
}

// take returns the pending messages (and whether a keep-alive is due), handing s.q the
// spare slice; or the error that ends the stream.
func (s *stream) take(spare []*item) (batch []*item, ka bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, false, s.err
	}
	batch, s.q = s.q, spare[:0]
	ka, s.ka = s.ka, false
	return batch, ka, nil
}

// StreamOptions describe one client stream.
type StreamOptions struct {
	Tenant, User string
	DataOnly     bool // ?format=data: send Message.Data instead of Message.Record
	// Backlog is called once after the stream is registered with the hub (so nothing published
	// meanwhile is lost) to send what precedes live delivery: the state, or everything after
	// Last-Event-ID. It calls send for each message in order and returns the last Seq it sent
	// (live messages with Seq <= that are skipped; ephemeral Seq 0 messages always pass).
	// nil: no backlog.
	Backlog func(send func(Message) error) (lastSeq uint64, err error)
}

// writer writes whole messages to the response, one Write + Flush each.
type writer struct {
	s      *stream
	w      http.ResponseWriter
	rc     *http.ResponseController
	retry  int    // > 0 until the first message is written
	buf    []byte // for messages encoded for this stream only (backlog, first message)
	wrote  bool
	dataOn bool
}

func (wr *writer) write(b []byte) error {
	wr.s.writing.Store(true)
	_, err := wr.w.Write(b)
	if err == nil {
		err = wr.rc.Flush()
	}
	wr.s.writing.Store(false)
	wr.s.written.Add(1)
	return err
}

// send writes m; the first message of the stream carries the retry: hint.
func (wr *writer) send(m *Message, shared []byte) error {
	if wr.retry > 0 || shared == nil {
		data := m.Record
		if wr.dataOn {
			data = m.Data
		}
		wr.buf = AppendMessage(wr.buf[:0], m.Event, orNull(data), m.Seq, wr.retry)
		wr.retry = 0
		return wr.write(wr.buf)
	}
	return wr.write(shared)
}

func (wr *writer) keepAlive() error {
	if wr.retry > 0 {
		wr.buf = AppendKeepAlive(wr.buf[:0])
		wr.buf = wr.buf[:len(wr.buf)-1] // retry goes before the blank line
		wr.buf = append(wr.buf, "retry:"...)
		wr.buf = appendInt(wr.buf, wr.retry)
		wr.buf = append(wr.buf, "\n\n"...)
		wr.retry = 0
		return wr.write(wr.buf)
	}
	return wr.write(keepAliveBytes)
}

var keepAliveBytes = []byte(keepAlive)

func appendInt(b []byte, n int) []byte {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

// Serve writes headers (Content-Type: text/event-stream, Cache-Control: no-cache,
// X-Accel-Buffering: no), then the backlog, then live messages and keep-alives, each message
// one Write + Flush, until the client goes, ctx ends, the hub closes, or the stream is too slow.
// It returns ctx.Err() when ctx ends, ErrSlow, ErrClosed (also at once, before writing
// anything, if the hub is closed), ErrUserClosed, the Backlog's error, or the write error when
// the client went away.
func (h *Hub) Serve(ctx context.Context, w http.ResponseWriter, opts StreamOptions) error {
	s := &stream{tenant: opts.Tenant, user: opts.User, notify: make(chan struct{}, 1)}
	rc := http.NewResponseController(w)
	s.abort = func() { rc.SetWriteDeadline(time.Unix(1, 0)) }
	if !h.register(s) {
		return ErrClosed
	}
	defer h.unregister(s)
	defer func() {
		s.mu.Lock()
		s.abort = nil
		s.mu.Unlock()
	}()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return err
	}

	wr := &writer{s: s, w: w, rc: rc, retry: h.retryMS, dataOn: opts.DataOnly}
	var last uint64
	if opts.Backlog != nil {
		var err error
		last, err = opts.Backlog(func(m Message) error {
			if err := s.failed(); err != nil {
				return err
			}
			return wr.send(&m, nil)
		})
		if err != nil {
			return s.reason(err)
		}
	}
	wr.buf = nil // an idle stream keeps no buffer

	var spare []*item
	for {
		select {
		case <-s.notify:
		case <-ctx.Done():
			return ctx.Err()
		}
		batch, ka, err := s.take(spare)
		if err != nil {
			return err
		}
		for i, it := range batch {
			batch[i] = nil
			if it.m.Seq != 0 {
				if it.m.Seq <= last {
					continue
				}
				last = it.m.Seq
			}
			var shared []byte
			if wr.retry == 0 {
				shared = it.bytes(opts.DataOnly)
			}
			if err := wr.send(&it.m, shared); err != nil {
				return s.reason(err)
			}
			ka = false
		}
		if ka {
			if err := wr.keepAlive(); err != nil {
				return s.reason(err)
			}
		}
		if cap(batch) <= 64 { // keep a small spare; let a burst's big slice go
			spare = batch[:0]
		} else {
			spare = nil
		}
		wr.buf = nil
	}
}

func (s *stream) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// reason prefers why the hub ended the stream (its abort makes the write fail) over the write
// error itself.
func (s *stream) reason(werr error) error {
	if err := s.failed(); err != nil {
		return err
	}
	return werr
}
