package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A sock is a connection whose reads pump makes. On a plain socket, pump saves the read that
// a request-reply peer makes every read end with: net.Conn's Read always tries the socket
// and waits only when the read finds it empty, so each frame of a sequential caller costs two
// reads, one of them for nothing. pump waits for the socket to become readable instead, when
// that is safe:
//
//   - The read was short and small (it emptied the socket of data), and the step says that
//     the peer now waits for an answer (stepAnswered, stepQuiet). A peer streaming frames
//     most likely has more on the way, which a read gets sooner than the runtime's poller
//     would report it: after stepMore, or a read that filled its slice or brought much, pump
//     reads again at once.
//   - The end of the connection cannot be waiting behind that data. A peer that sent its last
//     frame and hung up before the read leaves an end that no readiness will announce, and
//     that only one more read would find. But a write to the peer made after the read fails
//     at once on a UNIX socket whose peer has gone, and over TCP draws a reset that makes the
//     socket readable again: so pump waits at once only after stepAnswered, which says the
//     step wrote that answer itself, as the broker's reader does when it acknowledges a frame.
//   - pump stays inside one syscall.RawConn.Read for as long as the connection lives: the
//     runtime clears its readiness flag for the socket when a Read or RawConn.Read starts,
//     so data arriving between two of them would be forgotten, but within one the flag is
//     kept, and the wait returns at once for data that arrived while the read was handled.
//
// A reader that does not answer what it reads (the Go client's: its callers write) can wait
// after stepQuiet too, by setting confirm: the end is then found by a later read, in at most
// that time.
//
// Its Write, too, makes the system calls itself on a plain socket, inside RawConn.Write. On
// linux reads and writes are then raw system calls, without the scheduler's bookkeeping
// around them (see sysRead): an acknowledged round trip is a read and a write at each end,
// and where system calls are slow, that bookkeeping is a good part of its cost.
//
// While a read is in progress, the runtime's Close waits for it to end. A sock's Close may be
// called while pump handles a read, by the very goroutine (a failed write of an ack, a
// callback of the client's that closes it) or by another one that the handler waits for: it
// then shuts the connection down at once, so that the peer sees it end, and closes the
// descriptor in the background once pump has returned, which it does before its next read.
type sock struct {
	net.Conn
	rc      syscall.RawConn // nil: not a plain socket (TLS, WebSocket), read as usual
	closing atomic.Bool
	done    chan struct{} // closed by the first Close
	inRead  atomic.Bool   // pump is inside its RawConn.Read, and not waiting

	wrenewed time.Time // when writeWithin last moved the write deadline

	wmu     sync.Mutex // serialises Write: wbuf, wn and werr are its call's
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool // s.write, made once: a method value per Write would allocate

	// confirm, if set, lets pump wait without reading after a short read that its step
	// found quiet but did not answer, and read again once confirm has passed: an end behind
	// the data is then found within confirm. It needs the read deadline, which the
	// connection's user must leave alone; a connection whose reads have deadlines of their
	// own leaves confirm zero.
	confirm time.Duration
}

// stepResult is what pump's step makes of a read.
type stepResult int

const (
	stepStop     stepResult = iota // read no more: pump returns nil
	stepMore                       // more may be on the way
	stepQuiet                      // the peer waits for an answer that is not written yet
	stepAnswered                   // the peer waits, and the step has written to it since the read
)

// writeWithin gives the writes that start now at least d to complete, and at most 1.25 × d.
// Moving a deadline costs more than reading the clock, so the deadline is set a quarter of d
// longer and moved only once that quarter has passed. Its callers serialise their writes.
func (s *sock) writeWithin(d time.Duration) {
	if now := time.Now(); now.Sub(s.wrenewed) > d/4 {
		s.wrenewed = now
		s.SetWriteDeadline(now.Add(d + d/4))
	}
}

// smallRead is the most a read may bring for pump to wait after it: after a larger one, the
// next read most likely gets more sooner than the runtime's poller would report it.
const smallRead = 4 << 10

func newSock(nc net.Conn) *sock {
	s := &sock{Conn: nc, done: make(chan struct{})}
	if sc, ok := nc.(syscall.Conn); ok && rawSockets {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
			s.writeFn = s.write
		}
	}
	return s
}

// Write writes p whole, or fails. On a plain socket it makes the system calls itself, as pump
// does for reads (see sysWrite), and waits for the socket to drain, up to the write deadline,
// when it is full.
func (s *sock) Write(p []byte) (int, error) {
	if s.rc == nil {
		return s.Conn.Write(p)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wbuf, s.wn, s.werr = p, 0, nil
	err := s.rc.Write(s.writeFn)
	n, werr := s.wn, s.werr
	s.wbuf, s.werr = nil, nil
	if werr != nil {
		err = werr
	}
	return n, err
}

func (s *sock) write(fd uintptr) bool {
	for s.wn < len(s.wbuf) {
		n, err := sysWrite(fd, s.wbuf[s.wn:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // full: wait until it drains
		case err != nil:
			s.werr = s.opError("write", err)
			return true
		}
		s.wn += n
	}
	return true
}

func (s *sock) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: s.LocalAddr().Network(), Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}

// Close closes the connection, at once unless pump is handling a read (see sock).
func (s *sock) Close() error {
	if !s.closing.Swap(true) {
		close(s.done)
	}
	// inRead is set before closing is checked, and closing before inRead is: either pump sees
	// closing and returns before handling anything more, or this sees pump inside.
	if s.inRead.Load() {
		// The peer learns of the end now, not when the descriptor goes.
		s.rc.Control(sysShutdown)
		go s.Conn.Close()
		return nil
	}
	return s.Conn.Close()
}

// pump reads s until step returns stepStop or a read fails, and returns the failure (io.EOF
// for an orderly end, nil when step stopped it). Each read goes into the slice next returns,
// which must not be empty, and step gets the count read.
func (s *sock) pump(next func() []byte, step func(n int) stepResult) error {
	if s.rc == nil {
		for {
			n, err := s.Conn.Read(next())
			if n > 0 && step(n) == stepStop {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	var rerr error
	stopped, armed := false, false // armed: a deadline ends a wait that skipped a read
	read := func(fd uintptr) bool {
		s.inRead.Store(true)
		defer s.inRead.Store(false)
		for {
			if s.closing.Load() {
				rerr = net.ErrClosed
				return true
			}
			p := next()
			n, err := sysRead(fd, p)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return false // wait for readiness
			case err != nil:
				rerr = s.opError("read", err)
				return true
			case n == 0:
				rerr = io.EOF
				return true
			}
			r := step(n)
			if r == stepStop {
				stopped = true
				return true
			}
			if n < len(p) && n <= smallRead {
				if r == stepAnswered {
					return false // emptied, and no end behind: wait rather than read for nothing
				}
				if r == stepQuiet && s.confirm > 0 {
					if !armed {
						armed = true
						s.SetReadDeadline(time.Now().Add(s.confirm))
					}
					return false // emptied, and any end behind found within confirm
				}
			}
		}
	}
	for {
		err := s.rc.Read(read)
		switch {
		case stopped:
			return nil
		case rerr != nil:
			return rerr
		case armed && errors.Is(err, os.ErrDeadlineExceeded):
			armed = false
			s.SetReadDeadline(time.Time{})
			continue // read again, for an end that the wait may have missed
		}
		return err // the wait's: net.ErrClosed, os.ErrDeadlineExceeded
	}
}
