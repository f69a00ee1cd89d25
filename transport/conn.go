package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rtbus/rtbus/bus"
)

// handle runs one connection: the handshake, then a reader that routes the client's frames
// and a writer that sends it what the bus queues for it. When it ends, it logs why, once.
func (s *Server) handle(nc *sock, kind, port string, src netip.AddrPort, cfg Config) {
	defer nc.Close()
	peer := nc.RemoteAddr().String()
	c, err := s.handshake(nc, kind, port, src, cfg)
	if err != nil {
		level := slog.LevelInfo
		if errors.Is(err, errSilentPeer) {
			// A peer that closes before its first byte is a probe (a health check, another
			// rtbusd testing whether the socket is live), not a client that failed.
			level = slog.LevelDebug
		}
		cfg.Logger.Log(context.Background(), level, "transport: connection dropped", "peer", peer, "reason", fmt.Sprintf("handshake: %v", err))
		return
	}
	var cause writeCause
	out := &outbox{nc: nc, c: c, cfg: cfg, cause: &cause, buf: make([]byte, 0, cfg.WriteBuffer)}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		out.run()
	}()
	go func() {
		defer wg.Done()
		ping(nc, c, cfg, &out.mu, &cause)
	}()
	rerr := s.read(nc, c, cfg, out)
	busErr := c.Err() // why the bus stopped the client, if it did: before Close says "closed"
	c.Close()
	nc.Close()
	wg.Wait()
	logEnd(cfg.Logger, c.Name(), peer, dropReason(rerr, busErr, cause.get(), cfg.Timeout))
}

// dropReason names why a registered connection ended, or returns nil for an orderly end (the
// client hung up, the broker shut down, the server closed). A client's hang-up explains a
// write failing at the same moment, and so does the bus's dropping the client (a slow
// receiver, a forced disconnect), whose socket is then closed; otherwise a failed write is
// the cause of whatever the reader saw next.
func dropReason(rerr, busErr, werr error, timeout time.Duration) error {
	switch {
	case rerr == nil && busErr == nil:
		return nil // the client hung up between frames
	case errors.Is(busErr, bus.ErrBrokerClosed):
		return nil
	case busErr != nil:
		return busErr // the bus dropped the client: the socket was closed for it
	case werr != nil:
		return werr
	case errors.Is(rerr, net.ErrClosed):
		return nil
	case errors.Is(rerr, os.ErrDeadlineExceeded):
		return fmt.Errorf("idle: nothing received for %v", timeout+timeout/4)
	}
	return rerr
}

// logEnd logs a dropped connection once. Queue overflows and forced disconnects are logged by
// the bus itself, which knows them first.
func logEnd(log *slog.Logger, name, peer string, reason error) {
	switch {
	case reason == nil:
		log.Debug("transport: connection closed", "client", name, "peer", peer)
	case errors.Is(reason, bus.ErrQueueOverflow), errors.Is(reason, bus.ErrDisconnected):
	default:
		log.Info("transport: connection dropped", "client", name, "peer", peer, "reason", reason.Error())
	}
}

// writeCause keeps the first write failure of a connection, whose writer and pinger both
// write.
type writeCause struct {
	mu  sync.Mutex
	err error
}

// fail records err, unless a failure is recorded already, and closes nc, which ends the
// reader too.
func (w *writeCause) fail(nc net.Conn, err error) {
	w.mu.Lock()
	if w.err == nil && !errors.Is(err, net.ErrClosed) { // closed here: the closer knows why
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("write timeout: %w", err)
		} else {
			err = fmt.Errorf("write: %w", err)
		}
		w.err = err
	}
	w.mu.Unlock()
	nc.Close()
}

func (w *writeCause) get() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// errSilentPeer: the peer closed the connection before sending a byte.
var errSilentPeer = errors.New("closed before the greeting")

// gone reports an error saying the peer closed its end.
func gone(err error) bool { return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) }

// handshake performs WIRE.md §2 and registers the client.
func (s *Server) handshake(nc net.Conn, kind, port string, src netip.AddrPort, cfg Config) (*bus.Client, error) {
	nc.SetDeadline(time.Now().Add(cfg.Timeout))
	defer nc.SetDeadline(time.Time{})
	hello := []byte{greeting, protocolVersion, 0}
	if _, err := nc.Write(hello); err != nil {
		if gone(err) {
			err = errSilentPeer
		}
		return nil, err
	}
	var buf [3]byte
	if n, err := io.ReadFull(nc, buf[:]); err != nil {
		if n == 0 && (errors.Is(err, io.EOF) || gone(err)) {
			err = errSilentPeer
		}
		return nil, err
	}
	if buf != [3]byte{greeting, protocolVersion, 0} {
		nc.Write([]byte{byte(bus.ErrNotSupported)})
		return nil, errors.New("transport: handshake: bad greeting echo")
	}
	if _, err := nc.Write([]byte{bus.CodeOK}); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(nc, buf[:2]); err != nil {
		return nil, err
	}
	// The name is read as it arrives, not into what its length announces: 64 KiB per
	// connection for two bytes sent would be memory the client has not paid for.
	n := int(binary.LittleEndian.Uint16(buf[:2]))
	name, err := io.ReadAll(io.LimitReader(nc, int64(n)))
	if err == nil && len(name) < n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(name) {
		return nil, errors.New("transport: handshake: name is not UTF-8") // closed without a byte
	}
	c, err := s.b.RegisterClient(string(name),
		bus.WithConnInfo(bus.ConnInfo{Kind: kind, Source: src, Port: port}),
		bus.WithClientPolicy(cfg.Policy))
	if err != nil {
		nc.Write([]byte{bus.CodeOf(err)}) // a closed broker has no code of its own: 74, other
		return nil, err
	}
	if _, err := nc.Write([]byte{bus.CodeOK}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// read routes the client's frames until the connection or the client ends.
//
// It drops a client that has sent nothing for idle (1.25 × timeout; clients ping about every
// second). Silence is measured from the last read from the socket, not from a frame boundary,
// so a client streaming frames that straddle reads is never taken for idle. Moving a deadline
// costs more than reading the clock, so the deadline is set a quarter of idle long and moved
// only once that quarter has passed: every read still has at least idle ahead of it, and a
// silent client goes within 1.25 × idle.
func (s *Server) read(nc *sock, c *bus.Client, cfg Config, out *outbox) error {
	idle := cfg.Timeout + cfg.Timeout/4
	var renewed time.Time
	in := newInbuf(cfg.PayloadLimit)
	defer in.free()
	var bodies slab
	defer bodies.release()
	next := func() []byte {
		if now := time.Now(); now.Sub(renewed) > idle/4 {
			renewed = now
			nc.SetReadDeadline(now.Add(idle + idle/4))
		}
		return in.room()
	}
	var err error
	step := func(n int) stepResult {
		in.end += n
		answered := false // the last frame taken was acknowledged by this goroutine
		for {
			var f frame
			var body []byte
			var ok bool
			if f, body, ok, err = in.frame(); err != nil {
				return stepStop
			}
			if !ok {
				// A large frame has filled the buffer: the next read needs more memory.
				if in.grow > inbufSize {
					if err = in.reserve(&s.incomplete, cfg.IncompleteLimit, cfg.Timeout, nc.done); err != nil {
						return stepStop
					}
				}
				if answered {
					return stepAnswered
				}
				return stepMore
			}
			answered = false
			if f.ping {
				continue
			}
			// The last frame of what the client sent may have its ack written at once, by
			// this goroutine: a client that waits for each ack gets it without a hand-off to
			// the writer. Acks of frames with more behind them are queued, to share a write.
			var now *outbox
			if in.empty() {
				now = out
			}
			if answered, err = route(c, &f, body, &bodies, now); err != nil {
				return stepStop
			}
		}
	}
	rerr := nc.pump(next, step)
	switch {
	case err != nil:
		return err
	case rerr == io.EOF && !in.empty():
		return io.ErrUnexpectedEOF
	case rerr == io.EOF:
		return nil // a clean end between frames
	}
	return rerr
}

// route hands one frame to the bus and queues its ack, which thereby follows every frame
// the operation routed to this very client. With out set, the final ack is written at once
// if the writer is idle, after what is queued; answered reports that it was.
func route(c *bus.Client, f *frame, body []byte, bodies *slab, out *outbox) (answered bool, err error) {
	switch f.op {
	case opPublish, opPublishFor, opMessage, opBroadcast:
		c.Hold(f.detach(body, bodies)) // the bus keeps the payload beyond the next read
	}
	switch f.op {
	case opPublish:
		err = c.Publish(f.qos, f.target, f.payload)
	case opPublishFor:
		err = c.PublishFor(f.qos, f.target, f.receiver, f.payload)
	case opMessage:
		err = c.Send(f.qos, f.target, f.payload)
	case opBroadcast:
		err = c.Broadcast(f.qos, f.target, f.payload)
	case opSubscribe:
		err = c.Subscribe(f.qos, f.topics...)
	case opUnsubscribe:
		err = c.Unsubscribe(f.qos, f.topics...)
	case opExclude:
		err = c.Exclude(f.qos, f.topics...)
	case opUnexclude:
		err = c.Unexclude(f.qos, f.topics...)
	}
	if errors.Is(err, bus.ErrClosed) {
		return false, err
	}
	if !f.qos.NeedsAck() {
		return false, nil
	}
	code := bus.CodeOK
	if e, ok := err.(bus.Error); ok { // the common case, without errors.As's allocation
		code = byte(e)
	} else if err != nil {
		var denied *bus.DeniedError
		if errors.As(err, &denied) {
			// WIRE.md §5: one 79 per refused topic, then one 01, all with the same op id.
			for range denied.Topics {
				if err := c.PushAck(f.opID, byte(bus.ErrAccessDenied), f.qos.Realtime()); err != nil {
					return false, err
				}
			}
		} else {
			code = bus.CodeOf(err)
		}
	}
	if out != nil {
		if written, err := out.ackNow(f.opID, code); written || err != nil {
			return written, err
		}
	}
	return false, c.PushAck(f.opID, code, f.qos.Realtime())
}

// outbox writes what the bus queues for a connection. Frames are taken from the queue and
// written under mu, by the writer goroutine (run) or, for an ack, by the connection's reader
// (ackNow), so that the socket gets them in queue order whoever writes them. mu also
// serialises the pinger's writes.
type outbox struct {
	mu     sync.Mutex
	nc     *sock
	c      *bus.Client
	cfg    Config
	cause  *writeCause
	frames []bus.Frame // guarded by mu
	buf    []byte      // guarded by mu
}

// run sends what the bus queues, a batch at a time in writes of up to WriteBuffer bytes,
// until the client stops or a write fails. A batch with a realtime frame goes at once; a
// short one without waits FlushDelay so that what follows shares its write.
func (o *outbox) run() {
	defer o.nc.Close() // the client stopped or a write failed: either ends the reader too
	for {
		if err := o.c.Wait(context.Background()); err != nil {
			return
		}
		o.mu.Lock()
		o.frames = o.c.TakeBatch(o.frames[:0], 0)
		if len(o.frames) == 0 {
			o.mu.Unlock()
			if o.c.Err() != nil {
				return // stopped, and nothing kept to write
			}
			continue // the reader wrote them
		}
		if o.cfg.FlushDelay > 0 && len(o.frames) < shortBatch && !anyRealtime(o.frames) {
			// Wait for company, but no longer than needed: until a full batch or a realtime
			// frame is there.
			pause(o.cfg.FlushDelay, func() (int, bool) {
				n := len(o.frames)
				o.frames = o.c.TakeBatch(o.frames, 0)
				return len(o.frames), len(o.frames) >= shortBatch || anyRealtime(o.frames[n:])
			})
		}
		ok := o.writeLocked(false, 0, 0)
		o.mu.Unlock()
		if !ok {
			return
		}
	}
}

// ackNow writes an ack at once, after whatever is queued for the connection, unless another
// goroutine is writing; written is false then, and the ack must be queued. err is a failed
// write, which ends the connection.
func (o *outbox) ackNow(opID uint32, code byte) (written bool, err error) {
	if !o.mu.TryLock() {
		return false, nil
	}
	defer o.mu.Unlock()
	if o.c.Err() != nil {
		return false, nil // stopping: PushAck reports it
	}
	o.frames = o.c.TakeBatch(o.frames[:0], 0)
	o.c.CountAck()
	if !o.writeLocked(true, opID, code) {
		return true, bus.ErrDisconnected
	}
	return true, nil
}

// writeLocked writes o.frames, then with ack an ack, in writes of up to WriteBuffer bytes, and
// releases the frames; false if a write failed.
func (o *outbox) writeLocked(ack bool, opID uint32, code byte) bool {
	for i := range o.frames {
		o.buf = appendFrame(o.buf, &o.frames[i])
		o.frames[i].Release() // copied: its block may be reused
		if len(o.buf) >= o.cfg.WriteBuffer && !o.flushLocked() {
			return false
		}
	}
	clear(o.frames) // written: let the payloads go
	if ack {
		o.buf = appendAck(o.buf, opID, code)
	}
	return len(o.buf) == 0 || o.flushLocked()
}

func (o *outbox) flushLocked() bool {
	o.nc.writeWithin(o.cfg.Timeout)
	_, err := o.nc.Write(o.buf)
	if cap(o.buf) > 4*o.cfg.WriteBuffer {
		o.buf = make([]byte, 0, o.cfg.WriteBuffer) // one huge frame's buffer goes with it
	}
	o.buf = o.buf[:0]
	if err != nil {
		o.cause.fail(o.nc, err)
	}
	return err == nil
}

// pause waits up to d for company for a short batch, by yielding rather than sleeping: a
// timer sleep of a few microseconds lasts from tens of microseconds to a millisecond, which
// would put that much latency on every non-realtime ack, while yielding lets the goroutines
// that produce frames run meanwhile. poll reports how many frames wait and whether that is
// enough. The wait ends early once enough have come, or once nothing more has come for an
// eighth of d: then the producers have had their turn and are idle, and waiting longer would
// only spin (with one connection per sequential caller, eight such spinning writers would
// take the CPU from the work they wait for).
func pause(d time.Duration, poll func() (n int, enough bool)) {
	now := time.Now()
	end, quiet, grown := now.Add(d), d/8, now
	last, _ := poll()
	for {
		runtime.Gosched()
		n, enough := poll()
		now = time.Now()
		if enough || !now.Before(end) {
			return
		}
		if n != last {
			last, grown = n, now
		} else if now.Sub(grown) >= quiet {
			return
		}
	}
}

// shortBatch is the batch size below which the writer waits FlushDelay for company.
const shortBatch = 16

func anyRealtime(frames []bus.Frame) bool {
	for i := range frames {
		if frames[i].Realtime {
			return true
		}
	}
	return false
}

// ping sends a broker ping every Timeout/2 until the client stops (WIRE.md §7).
func ping(nc *sock, c *bus.Client, cfg Config, mu *sync.Mutex, cause *writeCause) {
	t := time.NewTicker(cfg.Timeout / 2)
	defer t.Stop()
	p := appendPing(nil)
	for {
		select {
		case <-c.Done():
			// Dropped by the bus (a slow receiver, a forced disconnect): close at once,
			// also under a writer stuck on a full socket. A broker shutting down leaves the
			// writer time to flush its warning.
			if !errors.Is(c.Err(), bus.ErrBrokerClosed) {
				nc.Close()
			}
			return
		case <-t.C:
			mu.Lock()
			nc.writeWithin(cfg.Timeout)
			_, err := nc.Write(p)
			mu.Unlock()
			if err != nil {
				cause.fail(nc, err)
				return
			}
		}
	}
}
