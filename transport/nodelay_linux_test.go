//go:build linux

package transport

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestTCPNoDelay: the broker's end of every TCP and WebSocket connection has Nagle's
// algorithm off, or a lone realtime frame would wait for the previous segment's ack. The
// broker runs in this process, so its sockets are found among this process's descriptors by
// their local port.
func TestTCPNoDelay(t *testing.T) {
	_, addrs := testListen(t, Config{}, "127.0.0.1:0", "ws://127.0.0.1:0")
	for i, addr := range addrs {
		dialTest(t, addr, fmt.Sprintf("nodelay%d", i))
		hostPort := addr
		if j := strings.Index(addr, "://"); j >= 0 {
			hostPort = addr[j+3:]
		}
		ap, err := netip.ParseAddrPort(hostPort)
		if err != nil {
			t.Fatal(err)
		}
		fds := acceptedSockets(t, int(ap.Port()))
		if len(fds) != 1 {
			t.Fatalf("%s: %d accepted sockets on port %d, want 1", addr, len(fds), ap.Port())
		}
		v, err := syscall.GetsockoptInt(fds[0], syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		if err != nil {
			t.Fatal(err)
		}
		if v == 0 {
			t.Errorf("%s: TCP_NODELAY is off on the broker's socket", addr)
		}
	}
}

// acceptedSockets returns this process's TCP sockets whose local port is port and that have
// a peer: the accepted ends, not the listener.
func acceptedSockets(t *testing.T, port int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		local, err := syscall.Getsockname(fd)
		if err != nil {
			continue
		}
		in, ok := local.(*syscall.SockaddrInet4)
		if !ok || in.Port != port {
			continue
		}
		if _, err := syscall.Getpeername(fd); err != nil {
			continue // the listener
		}
		fds = append(fds, fd)
	}
	return fds
}
