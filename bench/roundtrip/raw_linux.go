//go:build linux

package main

import (
	"errors"
	"net"
	"syscall"
	"unsafe"
)

// The -raw side: reads and writes are raw system calls inside RawConn.Read and RawConn.Write,
// a reader waits for readiness after a read that emptied the socket, and the client's acks
// are read by one goroutine per connection and handed to the caller, as rtbus's transport
// does; nothing else of a broker's work.

func rawIO(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// rawWrite writes p whole on c.
func rawWrite(rc syscall.RawConn, p []byte) error {
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			n, e := rawIO(syscall.SYS_WRITE, fd, p)
			switch e {
			case 0:
				p = p[n:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if werr != nil {
		return werr
	}
	return err
}

// rawRead calls each with every read's bytes until each returns false or the connection
// ends. After a read that did not fill buf it waits for readiness instead of reading again
// for nothing, as rtbus's transport does.
func rawRead(rc syscall.RawConn, buf []byte, each func(p []byte) (more bool)) error {
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, e := rawIO(syscall.SYS_READ, fd, buf)
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return false
			case e != 0:
				rerr = e
				return true
			case n == 0:
				rerr = errors.New("end of connection")
				return true
			}
			if !each(buf[:n]) {
				return true
			}
			if n < len(buf) {
				return false
			}
		}
	})
	if rerr != nil {
		return rerr
	}
	return err
}

func rawAck(c net.Conn) error {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	var frames frameSplitter
	var werr error
	rerr := rawRead(rc, buf, func(p []byte) bool {
		var out []byte
		if out, werr = frames.acks(p); werr == nil && len(out) > 0 {
			werr = rawWrite(rc, out)
		}
		return werr == nil
	})
	if werr != nil {
		return werr
	}
	return rerr
}

// rawClient makes k round trips on c, its acks read by a goroutine of their own.
func rawClient(c net.Conn, k int, frame []byte) error {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	acks := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	go func() {
		have := 0
		readErr <- rawRead(rc, make([]byte, 4096), func(p []byte) bool {
			for have += len(p); have >= ackLen; have -= ackLen {
				acks <- struct{}{}
			}
			return true
		})
	}()
	for range k {
		if err := rawWrite(rc, frame); err != nil {
			return err
		}
		select {
		case <-acks:
		case err := <-readErr:
			return err
		}
	}
	return nil
}
