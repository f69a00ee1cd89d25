package transport

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtbus/rtbus/bus"
)

// TestListenUnixLiveStaleReplaced: a live socket is refused with ErrAddrInUse and keeps
// serving, a stale socket file is replaced, and a listener whose file was replaced leaves
// the newcomer's file in place when it closes.
func TestListenUnixLiveStaleReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bus.sock")
	newServer := func() *Server {
		b := bus.New()
		s := NewServer(b)
		t.Cleanup(func() {
			s.Close()
			b.Close()
		})
		return s
	}

	// A stale file: bound, closed without removal.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	first := newServer()
	ln1, err := first.ListenUnix(path, Config{})
	if err != nil {
		t.Fatalf("stale socket file not replaced: %v", err)
	}

	// A live one: refused, and left serving.
	if _, err := newServer().ListenUnix(path, Config{}); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second listener on a live socket: %v, want ErrAddrInUse", err)
	}
	dialTest(t, path, "still.served")

	// Replaced: the file is removed and bound anew by another listener; closing the first
	// leaves it.
	os.Remove(path)
	second := newServer()
	if _, err := second.ListenUnix(path, Config{}); err != nil {
		t.Fatal(err)
	}
	ln1.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the replaced listener removed the newcomer's file: %v", err)
	}
	dialTest(t, path, "served.by.second")
	second.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("own socket file left behind on close: %v", err)
	}
}
