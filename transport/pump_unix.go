//go:build unix

package transport

import "syscall"

// rawSockets says whether a sock reads and writes plain sockets itself (see sock).
const rawSockets = true

func sysShutdown(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RDWR) }
