//go:build unix && (!linux || race)

package transport

import "syscall"

// sysRead and sysWrite go through the scheduler on unix systems other than linux, and in race
// builds everywhere (see sysio_raw.go).
func sysRead(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }

func sysWrite(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }
