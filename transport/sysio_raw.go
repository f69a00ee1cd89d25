//go:build linux && !race

package transport

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) without the scheduler's bookkeeping that
// syscall.Read and syscall.Write do for a call that may block (entersyscall, exitsyscall).
// Their sockets are non-blocking, so a call returns at once, with EAGAIN rather than
// waiting; and the bookkeeping is not free where system calls are slow: its P, marked as in
// a system call, may be handed to another thread meanwhile, and then has to be got back.
// On a 2-core VM, a bare acknowledged round trip between two processes ran about a third
// faster without it (see bench/roundtrip).
//
// The race detector learns from syscall.Read and syscall.Write that what one goroutine wrote
// to a socket happens before what another reads from it, the answer to it included: race
// builds use those (sysio_std.go), or every reply that a test waits for would be reported
// as a race.
func sysRead(fd uintptr, p []byte) (int, error) {
	return rawIO(syscall.SYS_READ, fd, p)
}

func sysWrite(fd uintptr, p []byte) (int, error) {
	return rawIO(syscall.SYS_WRITE, fd, p)
}

func rawIO(trap, fd uintptr, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(ptr), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
