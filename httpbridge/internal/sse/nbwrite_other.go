//go:build !linux

package sse

import (
	"net"
	"syscall"
)

// rawConn: the non-blocking write path is Linux only; elsewhere every detached stream writes
// from a goroutine of its own while it has something to send.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (s *stream) rawWrite(uintptr) bool { return true }

func wouldBlock(error) bool { return false }
