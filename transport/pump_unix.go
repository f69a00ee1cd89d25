//go:build unix && (!linux || race)

package transport

import "syscall"

// Race builds on linux use these too (see pump_linux.go).

// rawReads says whether pump reads plain sockets itself (see sock).
const rawReads = true

func sysRead(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }

func sysWrite(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }

func sysShutdown(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RDWR) }
