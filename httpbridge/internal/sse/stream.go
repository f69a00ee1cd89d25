package sse

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stream is the hub's side of one client connection, whatever its transport.
type stream struct {
	hub          *Hub
	tenant, user string
	tidx         int // index in Hub.tenants[tenant], under Hub.mu; -1 once unregistered

	// Who and what, for presence and kills; set before registration, then read-only.
	id        uint64
	session   string
	username  string
	remote    string
	since     time.Time
	transport transport
	anon      bool
	watch     []string // other users whose addressed messages the stream gets
	filter    Filter   // under Hub.mu (a long-polling connection may change it)
	enc       encoding

	notify chan struct{} // capacity 1: something was queued, or the stream failed (attached mode, polls)

	mu      sync.Mutex
	q       []*item // pending, oldest first
	ka      bool    // a keep-alive is pending
	err     error   // set once: why the stream ends
	kill    error   // set once: end with this after writing what is queued (the final message)
	abort   func()  // unblocks a write in progress; nil once the stream's writer is gone
	running bool    // detached mode: a goroutine is draining the queue (or Serve still is)

	// Long-polling only, under mu.
	watching  bool   // publications are queued too (else the log has them)
	overflow  bool   // a publication was not queued while watching: read the log
	held      int    // ephemeral messages queued
	active    int    // polls in progress
	idleSince int64  // UnixNano the last poll ended
	reused    bool   // a poll came back with the connection's id: it keeps watching between polls
	cursor    uint64 // with cursorOK, the queue holds every publication after cursor
	cursorOK  bool
	cred      [32]byte // digest of the credential polls were authenticated with (SetCredential)
	credSet   bool

	// Owned by whoever drains the queue (Serve's goroutine, or in detached mode the one
	// goroutine running at a time; s.mu hands the role over).
	out       func(net.Buffers) error // writes whole messages in one write, then flushes
	iov       net.Buffers             // messages gathered for the next out
	wv        net.Buffers             // what out is writing, on a writev connection
	retry     int                     // > 0 until the first message is written (SSE)
	last      uint64                  // highest Seq sent
	spare     []*item
	buf       []byte // messages encoded for this stream only (backlog, first message)
	conn      net.Conn
	done      func(error)
	broken    bool // a write failed: no final message can follow
	finalSent bool // the kill message queued by killWith was written

	// run is s.runDetached, made once: a go statement with a method value allocates its
	// closure each time, and a detached stream starts one for every write.
	run func()

	// written counts completed writes; writing is set during one. The keep-alive loop reads
	// them to spot idle and stuck streams (lastSeen and stuck are its own).
	written  atomic.Uint64
	writing  atomic.Bool
	lastSeen uint64
	stuck    bool
	expires  int64 // UnixNano of StreamOptions.Expires; 0: never

	// sent counts the messages written (keep-alives not counted), for Stats: the stream's own
	// counter rather than one all streams would share (a cache line passed between cores at
	// every write); its count moves to the hub's when the stream leaves the hub.
	sent atomic.Uint64

	// WebSocket: when the last ping went out and the last frame came in (hub clock, UnixNano);
	// raw, for a detached connection the keep-alive loop reads (a WebSocket's frames,
	// pollFrames; an SSE client's hang-up, pollHangup), and rbuf, the start of a client frame
	// read there (owned by the keep-alive loop).
	pingAt, pongAt atomic.Int64
	raw            syscall.RawConn
	rbuf           []byte
}

// addressees are the user ids whose addressed messages the stream gets.
func (s *stream) addressees() []string {
	if s.user == "" {
		return s.watch
	}
	return append([]string{s.user}, s.watch...)
}

func (s *stream) wakeLocked() {
	if s.conn == nil {
		select {
		case s.notify <- struct{}{}:
		default:
		}
		return
	}
	if !s.running {
		s.running = true
		go s.run()
	}
}

// wants reports whether the stream gets m (Hub.Publish): m is of its tenant, passes its
// filter, and is a publication if the stream is anonymous. Filter is under Hub.mu.
func (s *stream) wants(m *Message) bool {
	return s.tenant == m.Tenant && (m.Seq != 0 || !s.anon) && s.filter.match(m)
}

// push queues it; false when the stream did not take it.
func (s *stream) push(it *item, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pushLocked(it, limit) {
		return false
	}
	if s.transport != tPoll {
		s.wakeLocked()
	}
	return true
}

// pushAll queues those of its the stream wants (Hub.PublishBatch), under one lock and with
// one wake, and returns how many it took.
func (s *stream) pushAll(its []*item, limit int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, it := range its {
		if s.wants(&it.m) && s.pushLocked(it, limit) {
			n++
		}
	}
	if n > 0 && s.transport != tPoll {
		s.wakeLocked()
	}
	return n
}

// pushLocked queues it without waking the stream's writer (but a long-polling connection's);
// false when the stream did not take it.
func (s *stream) pushLocked(it *item, limit int) bool {
	if s.err != nil || s.kill != nil {
		return false
	}
	if s.transport == tPoll {
		return s.pushPollLocked(it, limit)
	}
	if len(s.q) >= limit {
		s.failLocked(ErrSlow)
		return false
	}
	s.q = append(s.q, it)
	return true
}

// pushPollLocked queues on a long-polling connection: ephemeral messages always (up to
// limit; they wait for the next poll), publications only while a poll waits (the next poll
// reads the others from the event log, so none is lost).
func (s *stream) pushPollLocked(it *item, limit int) bool {
	if it.m.Seq != 0 {
		if !s.watching {
			return false
		}
		if len(s.q)-s.held >= limit {
			s.overflow = true
			if s.active == 0 {
				// No poll is waiting, and the next one reads the log: the connection stops
				// queueing, so that one whose client left costs nothing until it is forgotten.
				s.stopWatchingLocked()
			}
			s.wakeLocked()
			return true
		}
	} else {
		if s.held >= limit {
			return false
		}
		s.held++
	}
	s.q = append(s.q, it)
	s.wakeLocked()
	return true
}

// killGrace bounds how long a killed stream may take to write its final message.
const killGrace = 500 * time.Millisecond

// killWith queues k's final message as the stream's last and ends it with err once written,
// or after killGrace whatever happens (a client that does not read). A WebSocket gets a close
// frame 4001 instead; a long-polling connection ends at once, its poll answering 401.
func (s *stream) killWith(k *kill, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.kill != nil {
		return false
	}
	if s.transport == tPoll {
		s.failLocked(err)
		return true
	}
	s.kill = err
	s.q = append(s.q, k.final(s.transport))
	s.wakeLocked()
	time.AfterFunc(killGrace, func() { s.fail(err) })
	return true
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
	s.held = 0
	// An attached stream is woken, and its Serve returns once a write under way is done:
	// net/http then ends the response itself, with END_STREAM over HTTP/2 and the last
	// chunk over HTTP/1.1, where a write deadline in the past would reset the HTTP/2 stream
	// (INTERNAL_ERROR) and cut the HTTP/1.1 connection. So such a write is cut only if it
	// is still going after killGrace (and one that sticks later, by tick). A detached
	// stream's connection is closed anyway.
	switch {
	case s.abort == nil:
	case s.conn != nil:
		s.abort()
	case s.writing.Load():
		time.AfterFunc(killGrace, s.abortWrite)
	}
	s.wakeLocked()
}

// abortWrite cuts the write of a stream whose writer has not let go of it.
func (s *stream) abortWrite() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.abort != nil {
		s.abort()
	}
}

// finalBytes is the last message a stream ending for err gets (nil: none): a WebSocket a
// close frame; a killed stream (ErrKilled, ErrUserClosed) the kill message, unless the one
// killWith queued was written (a stream failed meanwhile, or found killed while its backlog
// was read, did not get it). A
// long poll answers with a status instead.
func (s *stream) finalBytes(err error) []byte {
	if errors.Is(err, ErrKilled) || errors.Is(err, ErrUserClosed) {
		why := "session killed"
		if errors.Is(err, ErrUserClosed) {
			why = "user revoked"
		}
		switch {
		case s.finalSent:
		case s.transport == tSSE:
			return appendEncoded(nil, s.enc, &killItem(why).m, 0)
		case s.transport == tWS:
			return appendWSClose(nil, CloseSessionKilled, why)
		}
		return nil
	}
	if s.transport != tWS {
		return nil
	}
	var ce *closeError
	var cc *clientClosed
	switch {
	case errors.Is(err, ErrExpired):
		return appendWSClose(nil, CloseExpired, "token expired")
	case errors.Is(err, ErrClosed):
		return appendWSClose(nil, CloseGoingAway, "server shutting down")
	case errors.Is(err, ErrSlow):
		return appendWSClose(nil, ClosePolicy, "too slow: resume with the last id")
	case errors.As(err, &ce):
		return appendWSClose(nil, ce.code, ce.reason)
	case errors.As(err, &cc):
		if cc.code == 1005 { // the client's close had no code (parseClose refuses the others)
			return appendWSClose(nil, CloseNormal, "")
		}
		return appendWSClose(nil, cc.code, "")
	}
	return nil
}

// finish writes the final message of a stream that ended for err, if it has one and its
// connection is still whole, within a second.
func (s *stream) finish(err error, deadline func(time.Time) error) {
	b := s.finalBytes(err)
	if b == nil || s.broken || s.out == nil {
		return
	}
	deadline(time.Now().Add(time.Second))
	s.out(net.Buffers{b})
}

func (s *stream) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// tick runs from the keep-alive loop; now is the hub's clock, in UnixNano. It returns true
// for a long-polling connection that may be forgotten (see pollGone).
func (s *stream) tick(now int64) bool {
	if s.expires != 0 && now >= s.expires {
		s.fail(ErrExpired)
	}
	if s.transport == tPoll {
		return s.pollGone(now)
	}
	if s.transport == tSSE && s.raw != nil {
		s.pollHangup()
	}
	if s.transport == tWS {
		if s.raw != nil {
			s.pollFrames()
		}
		if p := s.pingAt.Load(); p != 0 && s.pongAt.Load() < p && now-p > 2*int64(s.hub.keepAlive) {
			s.fail(ErrNoPong)
			return false
		}
	}
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
			s.abortWrite() // also when the stream had failed before this write
		}
		s.stuck = true
		return false
	}
	s.mu.Lock()
	if s.err == nil {
		s.ka = true
		s.wakeLocked()
	}
	s.mu.Unlock()
	return false
}

// pollGone: a long-polling connection with no poll in progress that failed, or that saw no
// poll for PollHold.
func (s *stream) pollGone(now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active == 0 && (s.err != nil || now-s.idleSince > int64(s.hub.pollHold))
}

// flush writes the messages gathered in s.iov together, in one write, then flushes
// (HTTP.md "Streams": several waiting messages go out whole, in one write).
func (s *stream) flush() error {
	if len(s.iov) == 0 {
		return nil
	}
	s.writing.Store(true)
	err := s.out(s.iov)
	s.writing.Store(false)
	s.written.Add(1)
	clear(s.iov[:cap(s.iov)])
	s.iov = s.iov[:0]
	if err != nil {
		s.broken = true
	}
	return err
}

// writeJoined writes the messages of v with one call of write: v's only one, or their
// concatenation in a pooled buffer (so that a busy stream holds none of its own).
func writeJoined(v net.Buffers, write func([]byte) (int, error)) error {
	if len(v) == 1 {
		_, err := write(v[0])
		return err
	}
	bp := joinPool.Get().(*[]byte)
	b := (*bp)[:0]
	for _, m := range v {
		b = append(b, m...)
	}
	_, err := write(b)
	if cap(b) <= 64<<10 { // let a rare huge batch go
		*bp = b[:0]
		joinPool.Put(bp)
	}
	return err
}

var joinPool = sync.Pool{New: func() any { return new([]byte) }}

// writevConn is what a connection that net writes net.Buffers to with writev offers: a
// *net.TCPConn or *net.UnixConn, or a type that embeds one (and so its writev), such as the
// connection-counting wrapper of rtbusd's listeners.
func writevConn(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn, interface{ SetNoDelay(bool) error }, interface {
		ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error)
	}:
		return true
	}
	return false
}

// send gathers m for the next flush; the first message of the stream carries the retry:
// hint, so it is encoded for this stream in s.buf (which must not change before the flush).
func (s *stream) send(m *Message, shared []byte) {
	if s.retry > 0 {
		s.buf = s.appendOwn(s.buf[:0], m)
		shared = s.buf
	}
	s.iov = append(s.iov, shared)
}

// appendOwn appends m encoded for this stream only, with the retry: hint if it is the first.
func (s *stream) appendOwn(b []byte, m *Message) []byte {
	b = appendEncoded(b, s.enc, m, s.retry)
	s.retry = 0
	return b
}

func (s *stream) keepAlive() {
	if s.transport == tWS {
		// The unanswered ping is the one that dates the wait for a pong: restarting the clock
		// at every ping would let a client that never answers stay for ever.
		if p := s.pingAt.Load(); p == 0 || s.pongAt.Load() >= p {
			s.pingAt.Store(s.hub.now().UnixNano())
		}
		s.iov = append(s.iov, wsPing)
		return
	}
	if s.retry > 0 {
		s.buf = append(s.buf[:0], keepAlive[:len(keepAlive)-1]...) // retry goes before the blank line
		s.buf = append(s.buf, "retry:"...)
		s.buf = strconv.AppendInt(s.buf, int64(s.retry), 10)
		s.buf = append(s.buf, "\n\n"...)
		s.retry = 0
		s.iov = append(s.iov, s.buf)
		return
	}
	s.iov = append(s.iov, keepAliveBytes)
}

var keepAliveBytes = []byte(keepAlive)

// drain writes what is queued until nothing is; it returns why the stream ended, or nil. In
// detached mode, finding the queue empty gives up the running role under the same lock.
func (s *stream) drain() error {
	for {
		s.mu.Lock()
		if s.err != nil {
			s.mu.Unlock()
			return s.err
		}
		batch, ka, kill := s.q, s.ka, s.kill
		if len(batch) == 0 && !ka && kill == nil {
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
		sent := 0
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
				shared = it.bytes(s.enc)
			}
			s.send(&it.m, shared)
			ka = false
			sent++
		}
		if sent > 0 {
			s.sent.Add(uint64(sent))
		}
		if ka {
			s.keepAlive()
		}
		if err := s.flush(); err != nil {
			s.fail(err)
			return s.failed()
		}
		if kill != nil {
			s.finalSent = true
			s.fail(kill)
			return s.failed()
		}
		if cap(batch) <= 64 { // keep a small spare; let a burst's big slice go
			s.spare = batch[:0]
		}
	}
}

// runDetached drains a detached stream from its own short-lived goroutine, and ends it once
// it failed.
func (s *stream) runDetached() {
	if err := s.drain(); err != nil {
		s.finish(err, s.conn.SetWriteDeadline)
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
	s.hub.unregister(s, err)
	if callDone && s.done != nil {
		s.done(err)
	}
}

// StreamOptions describe one client stream.
type StreamOptions struct {
	Tenant, User string
	DataOnly     bool // ?format=data: send Message.Data instead of Message.Record

	// Session is the id (JWT jti) of the session the stream was opened with, for
	// KillSession; Username and Remote (the client's address) are shown by Conns.
	Session, Username, Remote string
	// Anonymous streams get publications only (no ephemeral messages), with Message.Anon as
	// the record.
	Anonymous bool
	// Watch lists other users (ids) of the tenant whose addressed messages the stream also
	// gets (a privileged watcher's ?users=); the caller checks the right to watch them.
	Watch []string
	// Filter narrows live messages; the Backlog applies it to what it sends itself.
	Filter Filter

	// Backlog is called once after the stream is registered with the hub (so nothing published
	// meanwhile is lost) to send what precedes live delivery: the state, or everything after
	// Last-Event-ID. It calls send for each message in order and returns the last Seq it sent
	// (live messages with Seq <= that are skipped; ephemeral Seq 0 messages always pass).
	// nil: no backlog.
	Backlog func(send func(Message) error) (lastSeq uint64, err error)

	// Detach lets an HTTP/1.x stream outlive the Serve call: Serve takes the connection over
	// (Hijack), writes the headers (those already set on w too) and the backlog itself, then
	// returns nil, and the stream lives on in the hub with no goroutine while idle (a
	// short-lived one writes when there is something to send). This costs an idle stream
	// about 1.5 KB, its connection included, instead of net/http's buffers and two goroutine
	// stacks (about 26 KB), and writes each message to the socket with no copy and no chunk
	// framing (the body ends when the connection closes). A client that goes away is noticed
	// at the next write (a keep-alive at the latest), not at once; ctx only covers the
	// backlog. Done, if set, is called once with the reason a stream ended after Serve
	// returned nil for it (not when Serve returns an error). Where the connection cannot be
	// taken over (HTTP/2, a ResponseWriter that hides Hijack), Serve serves the stream
	// attached, as without Detach. WebSocket streams (ServeWS) are always detached.
	Detach bool
	Done   func(error)

	// Expires, if set, ends the stream with ErrExpired once the hub's clock has passed it
	// (within half a KeepAlive): the expiry of the token the stream was opened with, so that
	// a stream lasts no longer than its credential.
	Expires time.Time
}

func (h *Hub) newStream(t transport, opts StreamOptions) *stream {
	s := &stream{
		hub: h, tenant: opts.Tenant, user: opts.User, transport: t,
		id: h.ids.Add(1), session: opts.Session, username: opts.Username, remote: opts.Remote,
		since: h.now(), anon: opts.Anonymous,
		filter: opts.Filter, enc: encodingOf(t, opts.DataOnly, opts.Anonymous),
		done:    opts.Done,
		running: true, // Serve drains until it returns (detached) or forever (attached)
	}
	for _, u := range opts.Watch {
		if u != "" && u != opts.User && !slices.Contains(s.watch, u) {
			s.watch = append(s.watch, u)
		}
	}
	if t == tSSE {
		s.retry = h.retryMS
	}
	if !opts.Expires.IsZero() {
		s.expires = opts.Expires.UnixNano()
	}
	return s
}

// Serve writes headers (Content-Type: text/event-stream, Cache-Control: no-cache,
// X-Accel-Buffering: no), then the backlog, then live messages and keep-alives, until the
// client goes, ctx ends, the hub closes, or the stream is too slow. Whatever is waiting when
// the stream writes (the backlog in pieces of about 64 KB, then the messages queued meanwhile)
// goes out in one Write, then a Flush; a lone message goes out at once; a message is never
// split across writes.
// It returns ctx.Err() when ctx ends, ErrSlow, ErrClosed (also at once, before writing
// anything, if the hub is closed), ErrUserClosed, ErrKilled, ErrExpired, the Backlog's error,
// or the write error when the client went away. See StreamOptions.Detach for streams that
// outlive the call.
func (h *Hub) Serve(ctx context.Context, w http.ResponseWriter, opts StreamOptions) error {
	s := h.newStream(tSSE, opts)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	if opts.Detach {
		if conn, err := hijack(rc); err == nil {
			return h.serveDetached(ctx, s, conn, "200 OK", hd, opts)
		}
	}
	return h.serveAttached(ctx, s, w, rc, opts)
}

func (h *Hub) serveAttached(ctx context.Context, s *stream, w http.ResponseWriter, rc *http.ResponseController, opts StreamOptions) (err error) {
	s.notify = make(chan struct{}, 1)
	s.abort = func() { rc.SetWriteDeadline(time.Unix(1, 0)) }
	s.out = func(v net.Buffers) error {
		if err := writeJoined(v, w.Write); err != nil {
			return err
		}
		return rc.Flush()
	}
	if !h.register(s) {
		return ErrClosed
	}
	defer func() { h.unregister(s, err) }()
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
		s.finish(err, rc.SetWriteDeadline)
		return err
	}
	for {
		if err := s.drain(); err != nil {
			s.finish(err, rc.SetWriteDeadline)
			return err
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (h *Hub) serveDetached(ctx context.Context, s *stream, conn net.Conn, status string, hd http.Header, opts StreamOptions) error {
	s.conn = conn
	s.run = s.runDetached
	if s.transport == tSSE {
		s.pollable(conn) // the keep-alive loop notices a client that hung up (pollHangup)
	}
	s.abort = func() { conn.SetWriteDeadline(time.Unix(1, 0)) }
	if writevConn(conn) { // writev: one system call for the lot, no copy
		s.out = func(v net.Buffers) error {
			// WriteTo takes its receiver's address, through an interface: v's own would move
			// to the heap at every write; the stream's field already is there.
			s.wv = v
			_, err := s.wv.WriteTo(conn) // consumes s.wv
			s.wv = nil
			return err
		}
	} else { // TLS and the like would write each buffer on its own (a record each)
		s.out = func(v net.Buffers) error { return writeJoined(v, conn.Write) }
	}
	if !h.register(s) {
		conn.Close()
		return ErrClosed
	}
	// Registered before the client sees the response: from then on it is counted and
	// reached by every publication and push.
	if err := writeHead(conn, status, hd); err != nil {
		s.end(err, false)
		return err
	}
	stop := context.AfterFunc(ctx, func() { s.fail(ctx.Err()) })
	err := s.backlog(opts.Backlog)
	if err == nil {
		err = s.drain() // what was published during the backlog; then idle
	}
	stop()
	if err != nil {
		s.finish(err, conn.SetWriteDeadline)
		s.end(err, false)
		return err
	}
	return nil
}

// hijack takes the connection over.
func hijack(rc *http.ResponseController) (net.Conn, error) {
	conn, _, err := rc.Hijack()
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// writeHead writes the response head: status, the headers set on w, and (but for an
// upgrade) Connection: close (the body ends with the connection).
func writeHead(conn net.Conn, status string, hd http.Header) error {
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 " + status + "\r\n")
	if hd.Get("Upgrade") == "" {
		hd.Set("Connection", "close")
	}
	hd.Del("Content-Length")
	hd.Del("Transfer-Encoding")
	hd.Write(&head)
	head.WriteString("\r\n")
	_, err := conn.Write(head.Bytes())
	return err
}

func (s *stream) backlog(fn func(send func(Message) error) (uint64, error)) error {
	if fn == nil {
		return nil
	}
	last, err := fn(func(m Message) error {
		if err := s.failed(); err != nil {
			return err
		}
		s.buf = s.appendOwn(s.buf, &m)
		s.sent.Add(1)
		if len(s.buf) >= backlogChunk {
			return s.flushBuf()
		}
		return nil
	})
	// Written also when the backlog failed: what it sent is whole, and may be its last word
	// (a session_killed message).
	if ferr := s.flushBuf(); err == nil {
		err = ferr
	}
	if err != nil {
		s.fail(err)
		return s.failed()
	}
	s.last = last
	return nil
}

// backlogChunk bounds what a stream holds of its backlog before writing it: the backlog's
// messages go out together in writes of about this size.
const backlogChunk = 64 << 10

// flushBuf writes the backlog messages gathered in s.buf.
func (s *stream) flushBuf() error {
	if len(s.buf) == 0 {
		return nil
	}
	s.iov = append(s.iov, s.buf)
	err := s.flush()
	s.buf = s.buf[:0]
	if err != nil {
		s.fail(err)
		return s.failed()
	}
	return nil
}
