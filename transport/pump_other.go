//go:build !unix

package transport

import "syscall"

// rawReads says whether pump reads plain sockets itself (see sock): here it reads through
// net.Conn, as everywhere for TLS and WebSocket.
const rawReads = false

func sysRead(fd uintptr, p []byte) (int, error) { return 0, syscall.EINVAL }

func sysShutdown(fd uintptr) {}

func sysWrite(fd uintptr, p []byte) (int, error) { return 0, syscall.EINVAL }
