//go:build unix

package transport

import "syscall"

// rawReads says whether pump reads plain sockets itself (see sock).
const rawReads = true

func sysRead(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }

func sysShutdown(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RDWR) }
