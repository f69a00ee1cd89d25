package transport

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/rtbus/rtbus/bus"
)

// TestLargeFrameNotHeldWhileIdle (issue 13's rule: memory held for a connection grows only
// with the bytes it has sent): a connection that sent a large frame and then waits holds its
// own read buffer again, not the one grown for that frame, and the server's count of memory
// for incomplete frames goes back to zero; also when what it sent after the frame is the
// header of another large frame, whose buffer then grows with its bytes as they come.
func TestLargeFrameNotHeldWhileIdle(t *testing.T) {
	const size, conns = 4 << 20, 4
	s, _, addrs := testListenServer(t, Config{PayloadLimit: size, Timeout: 10 * time.Second}, filepath.Join(t.TempDir(), "bus.sock"))
	path := addrs[0]
	held := func() int64 { return s.incomplete.held.Load() }
	first := clientFrame(1, opPublish|1<<6, "quiet/x\x00"+strings.Repeat("x", size-8))
	second := clientFrame(2, opPublish|1<<6, "quiet/y\x00"+strings.Repeat("y", size-8))
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	checkIdle := func(what string, base int64) {
		t.Helper()
		waitUntil(t, what+": memory for incomplete frames given back", func() bool { return held() == 0 })
		if grown := heap() - base; grown > conns*size/4 {
			t.Fatalf("%s: %d idle connections that each sent a %d-byte frame hold %d bytes", what, conns, size, grown)
		}
	}
	base := heap()
	var rs []*raw
	for i := range conns {
		r := dialRaw(t, "unix", path)
		if code := r.register(fmt.Sprintf("c%d", i)); code != 0x01 {
			t.Fatalf("register: %#x", code)
		}
		// The first frame, and the header of the second, which announces 4 MiB.
		r.write(append(append([]byte(nil), first...), second[:clientHeaderLen]...)...)
		r.expectAck(1, 0x01)
		waitUntil(t, fmt.Sprintf("c%d's bytes read", i), func() bool { return unread(t, r.nc) == 0 })
		rs = append(rs, r)
	}
	checkIdle("after a frame and the next one's header", base)

	// The second frame's bytes, all but its last, read before the last comes on its own.
	for i, r := range rs {
		r.write(second[clientHeaderLen : len(second)-100]...)
		waitUntil(t, fmt.Sprintf("c%d's bytes read", i), func() bool { return unread(t, r.nc) == 0 })
		r.write(second[len(second)-100:]...)
		r.expectAck(2, 0x01)
	}
	checkIdle("after the second frame", base)
}

// unread is what the peer of a UNIX socket has not read yet of what nc sent (SIOCOUTQ).
func unread(t *testing.T, nc net.Conn) int {
	t.Helper()
	rc, err := nc.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr syscall.Errno
	rc.Control(func(fd uintptr) {
		_, _, ierr = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	})
	if ierr != 0 {
		t.Fatal(ierr)
	}
	return n
}

// TestLargeFramesNotHeldByClients: once a large message has gone from one Go client through
// the server to another, which released it, nothing keeps it: not the server's queue for the
// receiver (its frames were written), nor the receiving client's (its frames were handed
// out), nor a buffer grown for it.
func TestLargeFramesNotHeldByClients(t *testing.T) {
	const size, pairs = 4 << 20, 4
	_, path := testServer(t, Config{PayloadLimit: size, Timeout: 10 * time.Second})
	payload := []byte(strings.Repeat("z", size-16))
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	base := heap()
	for i := range pairs {
		tx := dialTestLimit(t, path, fmt.Sprintf("tx%d", i), size)
		rx := dialTestLimit(t, path, fmt.Sprintf("rx%d", i), size)
		if err := tx.Send(bus.QoSProcessed, rx.Name(), payload); err != nil {
			t.Fatal(err)
		}
		f := recvOne(t, rx)
		if len(f.Payload) != len(payload) {
			t.Fatalf("received %d bytes", len(f.Payload))
		}
		f.Release()
	}
	// Each client's reader lets go of the buffer grown for the frame when it next reads,
	// after it has handed the frame out: on a busy machine the last one may not have yet.
	var grown int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if grown = heap() - base; grown <= pairs*size/4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle pairs of clients that passed %d bytes hold %d bytes", pairs, size, grown)
		}
	}
}

func dialTestLimit(t *testing.T, addr, name string, limit int) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, name, DialOptions{Timeout: 5 * time.Second, MaxFrame: limit + 1024})
	if err != nil {
		t.Fatalf("Dial %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
