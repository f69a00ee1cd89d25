//go:build unix

package sse

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
)

// pollable makes the keep-alive loop read a plain TCP or UNIX connection without waiting (a
// WebSocket's client frames, pollFrames; an SSE client's hang-up, pollHangup), so that the
// stream needs no reading goroutine; false for other connections.
// A type that embeds a *net.TCPConn or *net.UnixConn (such as the connection-counting
// wrapper of rtbusd's listeners) is one: its socket carries the frames as they are, which
// is also what lets the stream write to it with writev (writevConn).
func (s *stream) pollable(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok || !writevConn(conn) {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	s.raw = rc
	return true
}

// pollReads bounds the reads of one pollFrames: a client that keeps sending waits for the
// next tick.
const pollReads = 4

// readNow reads what the client sent into buf without waiting: n > 0 bytes, or ok false when
// nothing was there or the stream failed meanwhile (a read error, or the client closed its
// side: io.EOF), in which case it has failed the stream.
func (s *stream) readNow(buf []byte) (n int, ok bool) {
	for {
		var rerr error
		if err := s.raw.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), buf)
			return true // never wait
		}); err != nil { // the connection is closed
			s.fail(err)
			return 0, false
		}
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
			return 0, false
		case rerr == syscall.EINTR:
			continue
		case rerr != nil:
			s.fail(rerr)
			return 0, false
		case n == 0:
			s.fail(io.EOF)
			return 0, false
		}
		return n, true
	}
}

// pollHangup ends a detached SSE stream whose client has closed its connection, at the
// keep-alive tick after it did: the stream's connection slot is freed then, rather than
// when a second keep-alive fails to be written (up to two KeepAlives later), so that clients
// that come and go do not hold slots of the listener's cap meanwhile. An SSE client sends
// nothing after its request: what it sends anyway is read and dropped.
func (s *stream) pollHangup() {
	var buf [512]byte
	for range pollReads {
		if n, ok := s.readNow(buf[:]); !ok || n < len(buf) {
			return
		}
	}
}

// pollFrames reads what the client sent since the last tick without waiting, and handles the
// whole frames in it; the start of a frame waits in s.rbuf (at most one control frame) for
// the next tick. It runs from the keep-alive loop only.
func (s *stream) pollFrames() {
	var buf [512]byte
	var fb [maxControl + 8]byte
	for range pollReads {
		n, ok := s.readNow(buf[:])
		if !ok {
			return
		}
		s.rbuf = append(s.rbuf, buf[:n]...)
		for len(s.rbuf) > 0 {
			r := bytes.NewReader(s.rbuf)
			op, p, err := readClientFrame(r, &fb)
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				break // the rest of the frame comes later
			}
			if err != nil {
				s.fail(err)
				return
			}
			s.rbuf = s.rbuf[len(s.rbuf)-r.Len():]
			if s.handleFrame(op, p) {
				return
			}
		}
		if len(s.rbuf) == 0 {
			s.rbuf = nil
		}
		if n < len(buf) {
			return
		}
	}
}
