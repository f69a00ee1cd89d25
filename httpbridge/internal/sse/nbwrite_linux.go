//go:build linux

package sse

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawConn gives the non-blocking write path its handle on a plain TCP connection; nil (a TLS
// connection, say) keeps the stream on blocking writes from a goroutine of its own.
func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawWrite is the callback of RawConn.Write: one write (or writev) attempt that never waits
// for the socket to drain. It returns true so that the runtime does not park the caller on
// EAGAIN: the stream deals with that itself.
func (s *stream) rawWrite(fd uintptr) bool {
	for {
		if len(s.wv) > 0 {
			s.wn, s.werr = unix.Writev(int(fd), s.wv)
		} else {
			s.wn, s.werr = syscall.Write(int(fd), s.wb)
		}
		if s.werr != syscall.EINTR {
			return true
		}
	}
}

func wouldBlock(err error) bool { return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK }
