package transport

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

// TestRecycledBodiesIntact: the broker reuses the blocks it copies frame bodies into once
// every socket receiver has written them. Thousands of publications, each with a payload of
// its own, go through many blocks to two socket subscribers and to an in-process subscriber
// that keeps every frame unread until the end; each must see every payload unchanged, which
// fails if a block is reused while a frame still points into it.
func TestRecycledBodiesIntact(t *testing.T) {
	const n = 5000
	b, path := testServer(t, Config{})
	keep := mustBusClient(t, b, "keeper", bus.WithClientQueue(n+16))
	if err := keep.Subscribe(bus.QoSProcessed, "r/#"); err != nil {
		t.Fatal(err)
	}
	subs := []*Client{dialTest(t, path, "sub1"), dialTest(t, path, "sub2")}
	for _, s := range subs {
		if err := s.Subscribe(bus.QoSProcessed, "r/#"); err != nil {
			t.Fatal(err)
		}
	}
	pub := dialTest(t, path, "pub")
	payload := func(i int) string { return fmt.Sprintf("%06d-%0*d", i, 90, i) }
	errs := make(chan error, len(subs))
	for _, s := range subs {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i := range n {
				f, err := s.Recv(ctx)
				if err != nil {
					errs <- fmt.Errorf("%s: frame %d: %w", s.Name(), i, err)
					return
				}
				if want := payload(i); string(f.Payload) != want || f.Topic != fmt.Sprintf("r/%d", i%7) {
					errs <- fmt.Errorf("%s: frame %d: %s %q, want r/%d %q", s.Name(), i, f.Topic, f.Payload, i%7, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for i := range n {
		qos := bus.QoSNo
		if i%64 == 63 {
			qos = bus.QoSProcessed // paces the publisher to the broker's routing
		}
		if err := pub.Publish(qos, fmt.Sprintf("r/%d", i%7), []byte(payload(i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for range subs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Kept frames from the first blocks: by now, every block they share has been written to
	// both sockets, and would have been reused had the keeper not held it.
	for i := range n {
		f := recvOne(t, keep)
		if want := payload(i); string(f.Payload) != want || f.Topic != fmt.Sprintf("r/%d", i%7) {
			t.Fatalf("kept frame %d: %s %q, want r/%d %q", i, f.Topic, f.Payload, i%7, want)
		}
	}
}

func mustBusClient(t *testing.T, b *bus.Broker, name string, opts ...bus.ClientOption) *bus.Client {
	t.Helper()
	c, err := b.RegisterClient(name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestClientReleasedSlabsIntact: the Go client reuses a receive slab once every frame parsed
// from it has been released. A subscriber releases every other frame at once and keeps the
// rest unreleased while thousands more arrive through many slabs; the kept frames must be
// unchanged at the end, which fails if a slab is reused while a frame still points into it.
func TestClientReleasedSlabsIntact(t *testing.T) {
	const n = 20000 // ~130 bytes each on the wire: about 40 slabs
	_, path := testServer(t, Config{})
	sub := dialTest(t, path, "sub")
	if err := sub.Subscribe(bus.QoSProcessed, "r/#"); err != nil {
		t.Fatal(err)
	}
	pub := dialTest(t, path, "pub")
	payload := func(i int) string { return fmt.Sprintf("%06d-%0*d", i, 90, i) }
	done := make(chan error, 1)
	kept := make([]bus.Frame, 0, n/2)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := range n {
			f, err := sub.Recv(ctx)
			if err != nil {
				done <- fmt.Errorf("frame %d: %w", i, err)
				return
			}
			if string(f.Payload) != payload(i) {
				done <- fmt.Errorf("frame %d: %q, want %q", i, f.Payload, payload(i))
				return
			}
			if i%2 == 0 {
				f.Release()
			} else {
				kept = append(kept, f)
			}
		}
		done <- nil
	}()
	for i := range n {
		qos := bus.QoSNo
		if i%64 == 63 {
			qos = bus.QoSProcessed
		}
		if err := pub.Publish(qos, "r/x", []byte(payload(i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for j, f := range kept {
		if i := 2*j + 1; string(f.Payload) != payload(i) || f.Topic != "r/x" || f.Sender != "pub" {
			t.Fatalf("kept frame %d: %s %s %q", i, f.Sender, f.Topic, f.Payload)
		}
	}
}
