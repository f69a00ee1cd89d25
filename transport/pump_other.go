//go:build !unix

package transport

import "syscall"

// rawSockets says whether a sock reads and writes plain sockets itself (see sock): here it
// goes through net.Conn, as everywhere for TLS and WebSocket.
const rawSockets = false

func sysRead(fd uintptr, p []byte) (int, error) { return 0, syscall.EINVAL }

func sysWrite(fd uintptr, p []byte) (int, error) { return 0, syscall.EINVAL }

func sysShutdown(fd uintptr) {}
