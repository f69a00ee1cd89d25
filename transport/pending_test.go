package transport

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestPendingLimit: a reservation past the limit waits for a release, and fails after its
// wait or once its connection closes.
func TestPendingLimit(t *testing.T) {
	var p pending
	if err := p.reserve(600, 1000, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- p.reserve(600, 1000, 10*time.Second, nil) }()
	waitUntil(t, "a waiter", func() bool { return p.waiters.Load() == 1 })
	p.release(600)
	if err := <-got; err != nil {
		t.Fatalf("after the release: %v", err)
	}
	if err := p.reserve(600, 1000, 20*time.Millisecond, nil); !errors.Is(err, ErrIncompleteLimit) {
		t.Fatalf("no release: %v, want ErrIncompleteLimit", err)
	}
	done := make(chan struct{})
	close(done)
	if err := p.reserve(600, 1000, 10*time.Second, done); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed: %v, want net.ErrClosed", err)
	}
	if h := p.held.Load(); h != 600 {
		t.Fatalf("%d bytes held, want 600", h)
	}
}

// TestIncompleteLimit: with the memory for incomplete frames at the server's cap, a
// connection whose large frame needs more waits, and proceeds once another frame completes;
// one that waits longer than Timeout is closed, with the reason logged; small frames of
// other clients go through meanwhile.
func TestIncompleteLimit(t *testing.T) {
	const limit = 256 << 10
	logs := &lockedBuffer{}
	cfg := Config{PayloadLimit: limit, IncompleteLimit: limit + 64<<10, Timeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	s, _, addrs := testListenServer(t, cfg, filepath.Join(t.TempDir(), "bus.sock"))
	path := addrs[0]
	rx := dialTest(t, path, "rx")
	small := dialTest(t, path, "small")
	held := func() int { return int(s.incomplete.held.Load()) }

	// big starts a frame of the largest size to rx, and sends its first n bytes.
	big := func(name string, n int) (r *raw, rest []byte) {
		r = dialRaw(t, "unix", path)
		if code := r.register(name); code != 0x01 {
			t.Fatalf("register %s: %#x", name, code)
		}
		wire := clientFrame(1, opMessage, "rx\x00"+strings.Repeat(name[:1], limit-3))
		r.write(wire[:n]...)
		return r, wire[n:]
	}
	roundTrip := func() {
		t.Helper()
		if err := small.Publish(bus.QoSProcessed, "t", []byte("small")); err != nil {
			t.Fatalf("a small frame while the cap bites: %v", err)
		}
	}
	received := func(from string) {
		t.Helper()
		f := recvOne(t, rx)
		if f.Sender != from || len(f.Payload) != limit-3 || !bytes.Equal(f.Payload, bytes.Repeat([]byte(from[:1]), limit-3)) {
			t.Fatalf("rx got %d bytes from %s, want %d from %s", len(f.Payload), f.Sender, limit-3, from)
		}
	}

	a, aRest := big("alpha", 200<<10)
	waitUntil(t, "alpha's buffer", func() bool { return held() >= 200<<10 })
	bb, bRest := big("beta", 100<<10) // needs 128 KiB more than the cap leaves
	waitUntil(t, "beta waiting", func() bool { return s.incomplete.waiters.Load() == 1 })
	roundTrip()
	a.write(aRest...)
	received("alpha")
	waitUntil(t, "beta's buffer", func() bool { return s.incomplete.waiters.Load() == 0 && held() > 0 })
	bb.write(bRest...)
	received("beta")
	waitUntil(t, "all given back", func() bool { return held() == 0 })

	// Now one waits for longer than Timeout: it is closed, the others carry on.
	big("gamma", 200<<10)
	waitUntil(t, "gamma's buffer", func() bool { return held() >= 200<<10 })
	d, _ := big("delta", 100<<10)
	waitUntil(t, "delta waiting", func() bool { return s.incomplete.waiters.Load() == 1 })
	roundTrip()
	d.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [64]byte
	var err error
	for err == nil {
		_, err = d.nc.Read(buf[:]) // pings, then the end
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("delta not closed within 10 s")
	}
	waitUntil(t, "the drop logged", func() bool {
		return len(logs.lines("delta")) == 1 && strings.Contains(logs.lines("delta")[0], "memory for incomplete frames")
	})
	roundTrip()
	if h := held(); h < 200<<10 || h > limit+clientHeaderLen {
		t.Fatalf("%d bytes held for gamma's frame", h)
	}
}

// TestHandshakeNameFollowsBytes: connections that announce the longest name (64 KiB) and
// send a few bytes of it cost the server what arrived, not what was announced.
func TestHandshakeNameFollowsBytes(t *testing.T) {
	const conns = 200
	_, path := testServer(t, Config{Timeout: 10 * time.Second})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		r := dialRaw(t, "unix", path)
		r.expect(0xEB, 0x01, 0x00)
		r.write(0xEB, 0x01, 0x00)
		r.expect(0x01)
		r.write(0xFF, 0xFF, 'n', 'a', 'm', 'e') // 65,535 bytes announced, 4 sent
	}
	// What the server allocates for them, as it reads what was sent: watched for a while,
	// since an allocation that does not happen has no moment to wait for.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		runtime.ReadMemStats(&after)
		if perConn := (after.TotalAlloc - before.TotalAlloc) / conns; perConn > 16<<10 {
			t.Fatalf("%d bytes allocated per connection with a name announced and not sent", perConn)
		}
	}
}
