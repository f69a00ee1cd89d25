package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

func dialTest(t *testing.T, addr, name string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, name, DialOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Dial %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recvOne(t *testing.T, c bus.Conn) bus.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("%s: Recv: %v", c.Name(), err)
	}
	return f
}

// TestInProcessAndSocketClients: an in-process client and a socket client exchange every
// frame kind both ways, through the one bus.Conn interface.
func TestInProcessAndSocketClients(t *testing.T) {
	b, path := testServer(t, Config{})
	local, err := b.RegisterClient("local")
	if err != nil {
		t.Fatal(err)
	}
	remote := dialTest(t, path, "remote")
	conns := []bus.Conn{local, remote}
	for _, c := range conns {
		if err := c.Subscribe(bus.QoSProcessed, "news/#"); err != nil {
			t.Fatalf("%s: %v", c.Name(), err)
		}
	}
	for i, from := range conns {
		to := conns[1-i]
		if err := from.Send(bus.QoSProcessed, to.Name(), []byte("p2p")); err != nil {
			t.Fatal(err)
		}
		if f := recvOne(t, to); f.Kind != bus.KindMessage || f.Sender != from.Name() || string(f.Payload) != "p2p" {
			t.Fatalf("message to %s: %+v", to.Name(), f)
		}
		if err := from.Broadcast(bus.QoSRealtimeProcessed, to.Name(), []byte("bc")); err != nil {
			t.Fatal(err)
		}
		if f := recvOne(t, to); f.Kind != bus.KindBroadcast || !f.Realtime || string(f.Payload) != "bc" {
			t.Fatalf("broadcast to %s: %+v", to.Name(), f)
		}
		if err := from.PublishFor(bus.QoSProcessed, "news/x", to.Name(), []byte("pf")); err != nil {
			t.Fatal(err)
		}
		if f := recvOne(t, to); f.Kind != bus.KindPublish || f.Topic != "news/x" || string(f.Payload) != "pf" {
			t.Fatalf("publish-for to %s: %+v", to.Name(), f)
		}
	}
	// A publication reaches both, the publisher included.
	if err := remote.Publish(bus.QoSProcessed, "news/all", []byte("all")); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if f := recvOne(t, c); f.Topic != "news/all" || f.Sender != "remote" {
			t.Fatalf("%s: %+v", c.Name(), f)
		}
	}
	// Exclusions and unsubscribing work remotely too: nothing more reaches remote.
	remote.Exclude(bus.QoSProcessed, "news/excluded")
	remote.Unsubscribe(bus.QoSProcessed, "news/#")
	local.Publish(bus.QoSProcessed, "news/excluded", nil)
	local.Send(bus.QoSProcessed, "remote", []byte("last"))
	if f := recvOne(t, remote); string(f.Payload) != "last" {
		t.Fatalf("remote got %+v before the last message", f)
	}
}

func TestSocketClientAcks(t *testing.T) {
	m := aaa.NewMap()
	m.Set("c", aaa.Policy{Subscribe: aaa.Rule{Allow: []string{"ok/#"}}, Publish: aaa.Rule{Allow: []string{"ok/#"}}})
	_, addrs := testListen(t, Config{Policy: m}, "127.0.0.1:0")
	addr := addrs[0]
	c := dialTest(t, addr, "c")
	if err := c.Send(bus.QoSProcessed, "nobody", nil); !errors.Is(err, bus.ErrNotRegistered) {
		t.Errorf("send to nobody: %v", err)
	}
	if err := c.Send(bus.QoSNo, "nobody", nil); err != nil {
		t.Errorf("QoS 0 send to nobody: %v", err)
	}
	if err := c.Publish(bus.QoSProcessed, "no/x", nil); !errors.Is(err, bus.ErrAccessDenied) {
		t.Errorf("refused publish: %v", err)
	}
	if err := c.Subscribe(bus.QoSProcessed, "ok/a", "no/a", "no/b"); !errors.Is(err, bus.ErrAccessDenied) {
		t.Errorf("partly refused subscribe: %v", err)
	}
	// The allowed topic was subscribed.
	if err := c.Publish(bus.QoSProcessed, "ok/a", []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if f := recvOne(t, c); string(f.Payload) != "mine" {
		t.Fatalf("got %+v", f)
	}
	if _, err := Dial(context.Background(), addr, "c", DialOptions{}); !errors.Is(err, bus.ErrBusy) {
		t.Errorf("second c: %v, want ErrBusy", err)
	}
	if _, err := Dial(context.Background(), addr, "stranger", DialOptions{}); !errors.Is(err, bus.ErrAccessDenied) {
		t.Errorf("stranger: %v, want ErrAccessDenied", err)
	}
	c.Close()
	if err := c.Send(bus.QoSProcessed, "c", nil); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("send after Close: %v", err)
	}
}

// TestSocketClientSeesBrokerShutdown: the shutdown warning arrives, then the end.
func TestSocketClientSeesBrokerShutdown(t *testing.T) {
	b, path := testServer(t, Config{})
	c := dialTest(t, path, "c")
	b.Close()
	if f := recvOne(t, c); f.Topic != bus.TopicWarn {
		t.Fatalf("got %+v, want the shutdown warning", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Recv(ctx); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("after shutdown: %v", err)
	}
}

// TestReceivedFramesStayIntact: delivered frames share receive slabs; frames kept while
// thousands more arrive (across several slabs, with frames straddling reads) keep their
// contents. RecvBatch and Recv take from the same stream in order.
func TestReceivedFramesStayIntact(t *testing.T) {
	_, path := testServer(t, Config{})
	tx, rx := dialTest(t, path, "tx"), dialTest(t, path, "rx")
	const n = 3000
	for i := range n {
		p := []byte(fmt.Sprintf("frame %d %s", i, strings.Repeat("x", i%300)))
		if err := tx.Send(bus.QoSNo, "rx", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Send(bus.QoSProcessed, "rx", []byte("end")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var kept []bus.Frame
	for len(kept) <= n {
		var err error
		if len(kept)%2 == 0 {
			kept, err = rx.RecvBatch(ctx, kept, 7)
		} else {
			var f bus.Frame
			f, err = rx.Recv(ctx)
			kept = append(kept, f)
		}
		if err != nil {
			t.Fatalf("after %d frames: %v", len(kept), err)
		}
	}
	for i, f := range kept[:n] {
		want := fmt.Sprintf("frame %d %s", i, strings.Repeat("x", i%300))
		if f.Sender != "tx" || string(f.Payload) != want {
			t.Fatalf("frame %d: %s %q", i, f.Sender, f.Payload)
		}
	}
	if string(kept[n].Payload) != "end" {
		t.Fatalf("last frame %q", kept[n].Payload)
	}
}

// TestConcurrentReaders: two goroutines reading one client share its frames between them,
// and neither sleeps while frames wait.
func TestConcurrentReaders(t *testing.T) {
	_, path := testServer(t, Config{})
	tx, rx := dialTest(t, path, "tx"), dialTest(t, path, "rx")
	const n = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan int, 2)
	var left atomic.Int64
	left.Store(n)
	for range 2 {
		go func() {
			mine := 0
			for left.Add(-1) >= 0 {
				if _, err := rx.Recv(ctx); err != nil {
					break
				}
				mine++
			}
			got <- mine
		}()
	}
	for range n {
		if err := tx.Send(bus.QoSNo, "rx", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if total := <-got + <-got; total != n {
		t.Fatalf("readers got %d of %d frames", total, n)
	}
}
