package sse

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stream is the hub's side of one Serve call.
type stream struct {
	hub          *Hub
	tenant, user string
	tidx         int // index in Hub.tenants[tenant], under Hub.mu

	notify chan struct{} // capacity 1: something was queued, or the stream failed (attached mode)

	mu      sync.Mutex
	q       []*item // pending, oldest first
	ka      bool    // a keep-alive is pending
	err     error   // set once: why the stream ends
	abort   func()  // unblocks a write in progress; nil once the stream's writer is gone
	running bool    // detached mode: a goroutine is draining the queue (or Serve still is)

	// Owned by whoever drains the queue (Serve's goroutine, or in detached mode the one
	// goroutine running at a time; s.mu hands the role over).
	out      func([]byte) error
	outv     func(net.Buffers) error // writes several whole messages at once (Coalesce)
	coalesce bool
	iov      net.Buffers
	dataOnly bool
	retry    int    // > 0 until the first message is written
	last     uint64 // highest Seq sent
	spare    []*item
	buf      []byte // messages encoded for this stream only (backlog, first message)
	conn     net.Conn
	done     func(error)

	// Detached plain TCP streams are written without blocking by the publisher's runners
	// (see Hub.runAll). A write that stops short hands the stream to a goroutine of its own,
	// which finishes with blocking writes: pend is what is left of that write, rest and
	// restKA what was left of the batch.
	raw    syscall.RawConn // nil: always blocking writes (TLS, attached, non-Linux)
	rawFn  func(uintptr) bool
	nb     bool // the current drainer writes without blocking
	wb     []byte
	wv     [][]byte
	wn     int
	werr   error
	pend   net.Buffers
	rest   []*item
	restKA bool

	// written counts completed writes; writing is set during one. The keep-alive loop reads
	// them to spot idle and stuck streams (lastSeen and stuck are its own).
	written  atomic.Uint64
	writing  atomic.Bool
	lastSeen uint64
	stuck    bool
}

// claimLocked tells the stream's drainer there is work. For a detached stream with no drainer
// it takes the running role and returns true: the caller must then run s.runDetached (or
// hand the stream to Hub.runAll).
func (s *stream) claimLocked() bool {
	if s.conn == nil {
		select {
		case s.notify <- struct{}{}:
		default:
		}
		return false
	}
	if s.running {
		return false
	}
	s.running = true
	return true
}

func (s *stream) wakeLocked() {
	if s.claimLocked() {
		go s.runDetached()
	}
}

// push queues it; true when the caller took the running role (see claimLocked).
func (s *stream) push(it *item, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	if len(s.q) >= limit {
		s.failLocked(ErrSlow)
		return false
	}
	s.q = append(s.q, it)
	return s.claimLocked()
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
	s.wakeLocked()
}

func (s *stream) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// tick runs from the keep-alive loop; true when it took the running role (see claimLocked).
func (s *stream) tick() bool {
	n := s.written.Load()
	idle := n == s.lastSeen
	s.lastSeen = n
	if !idle {
		s.stuck = false
		return false
	}
	if s.writing.Load() {
		if s.stuck { // no write completed during two ticks: at least half KeepAlive stuck
			s.fail(ErrSlow)
		}
		s.stuck = true
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.ka = true
		return s.claimLocked()
	}
	return false
}

// errWouldBlock: a non-blocking write stopped short; s.pend holds the rest.
var errWouldBlock = errors.New("sse: write would block")

// errHandedOff: drain passed the stream to a goroutine of its own (see runBlocked).
var errHandedOff = errors.New("sse: stream handed to a blocking writer")

// maxIOV bounds the buffers of one writev (Linux's IOV_MAX).
const maxIOV = 1024

// writeNB writes b, or the buffers v, without waiting for the socket to drain. When the
// socket takes only part, the rest goes to s.pend and it returns errWouldBlock.
func (s *stream) writeNB(b []byte, v net.Buffers) error {
	if v == nil {
		n, err := s.rawOnce(b, nil)
		if err != nil {
			return err
		}
		if n == len(b) {
			return nil
		}
		s.pend = net.Buffers{b[n:]}
		return errWouldBlock
	}
	for len(v) > 0 {
		chunk := v[:min(len(v), maxIOV)]
		n, err := s.rawOnce(nil, chunk)
		if err != nil {
			return err
		}
		for len(chunk) > 0 && n >= len(chunk[0]) {
			n -= len(chunk[0])
			chunk, v = chunk[1:], v[1:]
		}
		if len(chunk) > 0 { // short write
			s.pend = make(net.Buffers, 0, len(v))
			s.pend = append(s.pend, v[0][n:])
			s.pend = append(s.pend, v[1:]...)
			return errWouldBlock
		}
	}
	return nil
}

// rawOnce makes one write or writev attempt; EAGAIN is a write of 0 bytes.
func (s *stream) rawOnce(b []byte, v [][]byte) (int, error) {
	s.wb, s.wv = b, v
	err := s.raw.Write(s.rawFn)
	n, werr := s.wn, s.werr
	s.wb, s.wv, s.werr = nil, nil, nil
	switch {
	case err != nil: // closed, or the deadline of an abort
		return 0, err
	case werr != nil && !wouldBlock(werr):
		// As conn.Write reports it, so that Done sees the same errors on either path.
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: s.conn.LocalAddr(), Addr: s.conn.RemoteAddr(), Err: os.NewSyscallError("write", werr)}
	case n < 0:
		n = 0
	}
	return n, nil
}

func (s *stream) write(b []byte) error {
	if s.nb {
		err := s.writeNB(b, nil)
		s.written.Add(1)
		return err
	}
	s.writing.Store(true)
	err := s.out(b)
	s.writing.Store(false)
	s.written.Add(1)
	return err
}

// flushIOV writes the messages gathered in s.iov (Coalesce) at once.
func (s *stream) flushIOV() error {
	if len(s.iov) == 0 {
		return nil
	}
	var err error
	if s.nb {
		err = s.writeNB(nil, s.iov)
	} else {
		s.writing.Store(true)
		err = s.outv(s.iov)
		s.writing.Store(false)
	}
	s.written.Add(1)
	clear(s.iov[:cap(s.iov)])
	s.iov = s.iov[:0]
	return err
}

// writePending finishes, blocking, the write that stopped short.
func (s *stream) writePending() error {
	s.writing.Store(true)
	_, err := s.pend.WriteTo(s.conn)
	s.writing.Store(false)
	s.written.Add(1)
	s.pend = nil
	return err
}

// emit writes b, or with Coalesce gathers it for flushIOV.
func (s *stream) emit(b []byte) error {
	if s.coalesce {
		s.iov = append(s.iov, b)
		return nil
	}
	return s.write(b)
}

// send writes m; the first message of the stream carries the retry: hint, so it is encoded
// for this stream, as are backlog messages (shared == nil).
func (s *stream) send(m *Message, shared []byte) error {
	if s.retry > 0 || shared == nil {
		data := m.Record
		if s.dataOnly {
			data = m.Data
		}
		s.buf = AppendMessage(s.buf[:0], m.Event, orNull(data), m.Seq, s.retry)
		s.retry = 0
		return s.emit(s.buf)
	}
	return s.emit(shared)
}

func (s *stream) keepAlive() error {
	if s.retry > 0 {
		s.buf = append(s.buf[:0], keepAlive[:len(keepAlive)-1]...) // retry goes before the blank line
		s.buf = append(s.buf, "retry:"...)
		s.buf = strconv.AppendInt(s.buf, int64(s.retry), 10)
		s.buf = append(s.buf, "\n\n"...)
		s.retry = 0
		return s.emit(s.buf)
	}
	return s.emit(keepAliveBytes)
}

var keepAliveBytes = []byte(keepAlive)

// drain writes what is queued until nothing is; it returns why the stream ended, or nil. In
// detached mode, finding the queue empty gives up the running role under the same lock. With
// s.nb, a write that would block hands the stream to runBlocked and drain returns
// errHandedOff.
func (s *stream) drain() error {
	for {
		s.mu.Lock()
		if s.err != nil {
			s.mu.Unlock()
			return s.err
		}
		batch, ka := s.q, s.ka
		if len(batch) == 0 && !ka {
			s.buf = nil // an idle stream keeps no buffer
			if cap(s.iov) > 16 {
				s.iov = nil
			}
			s.running = false // last: the role (and the fields it owns) may pass on at once
			s.mu.Unlock()
			return nil
		}
		s.q, s.spare, s.ka = s.spare[:0], nil, false
		s.mu.Unlock()
		if err := s.sendBatch(batch, ka); err != nil {
			if err == errWouldBlock {
				go s.runBlocked()
				return errHandedOff
			}
			s.fail(err)
			return s.failed()
		}
		if cap(batch) <= 64 { // keep a small spare; let a burst's big slice go
			s.spare = batch[:0]
		}
	}
}

// sendBatch writes the queued batch, then a keep-alive if ka and nothing else went out. On
// errWouldBlock, s.rest and s.restKA hold what it did not get to (s.pend the rest of the
// write).
func (s *stream) sendBatch(batch []*item, ka bool) error {
	for i, it := range batch {
		batch[i] = nil
		if it.m.Seq != 0 {
			if it.m.Seq <= s.last {
				continue
			}
			s.last = it.m.Seq
		}
		var shared []byte
		if s.retry == 0 {
			shared = it.bytes(s.dataOnly)
		}
		ka = false
		if err := s.send(&it.m, shared); err != nil {
			if err == errWouldBlock {
				s.rest, s.restKA = batch[i+1:], false
			}
			return err
		}
	}
	if ka {
		if err := s.keepAlive(); err != nil {
			return err
		}
	}
	return s.flushIOV()
}

// step writes one batch of a detached stream from a runner (without blocking); true when
// the runner keeps the stream for another round, false when it gave it up: idle, ended, or
// handed to runBlocked.
func (s *stream) step() bool {
	s.nb = true
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		s.end(err, true)
		return false
	}
	batch, ka := s.q, s.ka
	if len(batch) == 0 && !ka {
		s.buf = nil
		if cap(s.iov) > 16 {
			s.iov = nil
		}
		s.running = false
		s.mu.Unlock()
		return false
	}
	s.q, s.spare, s.ka = s.spare[:0], nil, false
	s.mu.Unlock()
	if err := s.sendBatch(batch, ka); err != nil {
		if err == errWouldBlock {
			go s.runBlocked()
			return false
		}
		s.fail(err)
		s.end(s.failed(), true)
		return false
	}
	if cap(batch) <= 64 {
		s.spare = batch[:0]
	}
	return true
}

// runDetached drains a detached stream (without blocking where it can), and ends it once it
// failed. It runs in a goroutine of its own, or in one of Hub.runAll's runners.
func (s *stream) runDetached() {
	s.nb = s.raw != nil
	err := s.drain()
	if err != nil && err != errHandedOff {
		s.end(err, true)
	}
}

// runBlocked takes over a stream whose socket was full: a client reading slowly keeps this
// goroutine (not a runner) waiting, until the stream is idle again or fails (its queue
// overflowed, or the keep-alive loop found the write stuck: both abort the write).
func (s *stream) runBlocked() {
	s.nb = false
	err := s.writePending()
	if err == nil {
		rest := s.rest
		s.rest = nil
		err = s.sendBatch(rest, s.restKA)
	}
	if err != nil {
		s.fail(err)
		err = s.failed()
	} else {
		err = s.drain()
	}
	if err != nil {
		s.end(err, true)
	}
}

// end releases a detached stream: its connection, its place in the hub, and calls its done
// callback if Serve has returned. It runs once: the running role is never given up after the
// stream failed.
func (s *stream) end(err error, callDone bool) {
	s.mu.Lock()
	s.abort = nil
	s.mu.Unlock()
	s.conn.Close()
	s.hub.unregister(s)
	if callDone && s.done != nil {
		s.done(err)
	}
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

	// Detach lets an HTTP/1.x stream outlive the Serve call: Serve takes the connection over
	// (Hijack), writes the headers (those already set on w too) and the backlog itself, then
	// returns nil, and the stream lives on in the hub with no goroutine while idle (a
	// short-lived one writes when there is something to send). This costs an idle stream a
	// few hundred bytes instead of net/http's buffers and two goroutine stacks, and writes
	// each message to the socket with no copy and no chunk framing (the body ends when the
	// connection closes). A client that goes away is noticed at the next write (a keep-alive
	// at the latest), not at once; ctx only covers the backlog. Done, if set, is called once
	// with the reason a stream ended after Serve returned nil for it (not when Serve returns
	// an error); it runs on a goroutine of the hub and must not block or call Publish. Where
	// the connection cannot be taken over (HTTP/2, a
	// ResponseWriter that hides Hijack), Serve serves the stream attached, as without Detach.
	Detach bool
	Done   func(error)
}

// Serve writes headers (Content-Type: text/event-stream, Cache-Control: no-cache,
// X-Accel-Buffering: no), then the backlog, then live messages and keep-alives, each message
// one Write + Flush, until the client goes, ctx ends, the hub closes, or the stream is too slow.
// It returns ctx.Err() when ctx ends, ErrSlow, ErrClosed (also at once, before writing
// anything, if the hub is closed), ErrUserClosed, the Backlog's error, or the write error when
// the client went away. See StreamOptions.Detach for streams that outlive the call.
func (h *Hub) Serve(ctx context.Context, w http.ResponseWriter, opts StreamOptions) error {
	s := &stream{
		hub: h, tenant: opts.Tenant, user: opts.User,
		dataOnly: opts.DataOnly, retry: h.retryMS, done: opts.Done, coalesce: h.coalesce,
		running: true, // Serve drains until it returns (detached) or forever (attached)
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	if opts.Detach {
		if conn, err := hijack(rc, hd); err == nil {
			return h.serveDetached(ctx, s, conn, opts)
		} else if conn != nil {
			conn.Close()
			return err
		}
	}
	return h.serveAttached(ctx, s, w, rc, opts)
}

func (h *Hub) serveAttached(ctx context.Context, s *stream, w http.ResponseWriter, rc *http.ResponseController, opts StreamOptions) error {
	s.notify = make(chan struct{}, 1)
	s.abort = func() { rc.SetWriteDeadline(time.Unix(1, 0)) }
	s.out = func(b []byte) error {
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	s.outv = func(v net.Buffers) error {
		for _, b := range v {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	if !h.register(s) {
		return ErrClosed
	}
	defer h.unregister(s)
	defer func() {
		s.mu.Lock()
		s.abort = nil
		s.mu.Unlock()
	}()
	rc.SetWriteDeadline(time.Time{}) // a server WriteTimeout must not cut a stream
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return err
	}
	if err := s.backlog(opts.Backlog); err != nil {
		return err
	}
	for {
		if err := s.drain(); err != nil {
			return err
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (h *Hub) serveDetached(ctx context.Context, s *stream, conn net.Conn, opts StreamOptions) error {
	s.conn = conn
	if s.raw = rawConn(conn); s.raw != nil {
		s.rawFn = s.rawWrite
	}
	s.abort = func() { conn.SetWriteDeadline(time.Unix(1, 0)) }
	s.out = func(b []byte) error {
		_, err := conn.Write(b)
		return err
	}
	s.outv = func(v net.Buffers) error {
		_, err := v.WriteTo(conn) // writev: one system call for the lot
		return err
	}
	if !h.register(s) {
		conn.Close()
		return ErrClosed
	}
	stop := context.AfterFunc(ctx, func() { s.fail(ctx.Err()) })
	err := s.backlog(opts.Backlog)
	if err == nil {
		err = s.drain() // what was published during the backlog; then idle
	}
	stop()
	if err != nil {
		s.end(err, false)
		return err
	}
	return nil
}

// hijack takes the connection over and writes the response head: status, the headers set on
// w, and Connection: close (the body ends with the connection).
func hijack(rc *http.ResponseController, hd http.Header) (net.Conn, error) {
	conn, _, err := rc.Hijack()
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	hd.Set("Connection", "close")
	hd.Del("Content-Length")
	hd.Del("Transfer-Encoding")
	hd.Write(&head)
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		return conn, err
	}
	return conn, nil
}

func (s *stream) backlog(fn func(send func(Message) error) (uint64, error)) error {
	if fn == nil {
		return nil
	}
	last, err := fn(func(m Message) error {
		if err := s.failed(); err != nil {
			return err
		}
		err := s.send(&m, nil)
		if err == nil {
			err = s.flushIOV() // s.buf is reused by the next message
		}
		if err != nil {
			s.fail(err)
			return s.failed()
		}
		return nil
	})
	if err != nil {
		s.fail(err)
		return s.failed()
	}
	s.last = last
	return nil
}
