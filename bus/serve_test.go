package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

func TestServeSelf(t *testing.T) {
	b := bus.New()
	defer b.Close()
	c, _ := b.RegisterClient("c")
	// Before anyone serves it, .broker refuses messages at once, saying why, and drops
	// publications.
	err := c.Send(bus.QoSProcessed, bus.BrokerName, []byte("refused"))
	if !errors.Is(err, bus.ErrNotRegistered) || !strings.Contains(err.Error(), "rpc.ServeBroker") {
		t.Fatalf("message to .broker not served: %v", err)
	}
	if err := c.Publish(bus.QoSProcessed, "x", []byte("dropped")); err != nil {
		t.Fatal(err)
	}
	self, err := b.ServeSelf()
	if err != nil {
		t.Fatal(err)
	}
	if self.Name() != bus.BrokerName {
		t.Fatalf("name %q", self.Name())
	}
	if _, err := b.ServeSelf(); !errors.Is(err, bus.ErrBusy) {
		t.Errorf("second ServeSelf: %v", err)
	}
	if err := c.Send(bus.QoSProcessed, bus.BrokerName, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := self.Recv(ctx)
	if err != nil || string(f.Payload) != "kept" || f.Sender != "c" {
		t.Fatalf("got %+v, %v", f, err)
	}
	// .broker is still listed once, and still subscribed to the warnings.
	n := 0
	for _, ci := range b.Clients() {
		if ci.Name == bus.BrokerName {
			n++
		}
	}
	if n != 1 {
		t.Errorf(".broker listed %d times", n)
	}
	if err := b.ForceDisconnect(bus.BrokerName); !errors.Is(err, bus.ErrNotRegistered) {
		t.Errorf("ForceDisconnect(.broker) = %v", err)
	}
	b.Close()
	if _, err := self.Recv(ctx); err == nil {
		// the shutdown warning is queued first
		if _, err := self.Recv(ctx); !errors.Is(err, bus.ErrBrokerClosed) {
			t.Errorf("after Close: %v", err)
		}
	}
	b2 := bus.New()
	b2.Close()
	if _, err := b2.ServeSelf(); !errors.Is(err, bus.ErrBrokerClosed) {
		t.Errorf("ServeSelf after Close: %v", err)
	}
}

// TestServeSelfFunc: one-to-one frames to .broker reach the handler before Send returns, in
// the sender's goroutine, and count in .broker's statistics as if queued; publications to
// .broker are still queued for the returned client.
func TestServeSelfFunc(t *testing.T) {
	b := bus.New()
	defer b.Close()
	c, _ := b.RegisterClient("c")
	var got []string // no lock: the handler runs in this goroutine
	self, err := b.ServeSelfFunc(func(f bus.Frame) {
		got = append(got, f.Sender+" "+string(f.Payload))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ServeSelf(); !errors.Is(err, bus.ErrBusy) {
		t.Errorf("ServeSelf after ServeSelfFunc: %v", err)
	}
	for _, p := range []string{"one", "two"} {
		if err := c.Send(bus.QoSProcessed, bus.BrokerName, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != "c one" || got[1] != "c two" {
		t.Fatalf("handler got %q, want [c one, c two] before Send returned", got)
	}
	for _, ci := range b.Clients() {
		if ci.Name == bus.BrokerName && (ci.WFrames < 2 || ci.Queue != 0) {
			t.Errorf(".broker: %d frames counted, %d queued; want at least 2 and 0", ci.WFrames, ci.Queue)
		}
	}
	if err := self.Subscribe(bus.QoSProcessed, "to/broker"); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(bus.QoSProcessed, "to/broker", []byte("queued")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if f, err := self.Recv(ctx); err != nil || string(f.Payload) != "queued" {
		t.Fatalf("publication: %+v, %v", f, err)
	}
}

// TestWaitAndTakeBatch: TakeBatch never blocks; Wait returns once something is queued, with
// ctx's error when nothing comes, and at once after the client stops.
func TestWaitAndTakeBatch(t *testing.T) {
	b := bus.New()
	defer b.Close()
	tx, _ := b.RegisterClient("tx")
	rx, _ := b.RegisterClient("rx")
	if got := rx.TakeBatch(nil, 0); len(got) != 0 {
		t.Fatalf("TakeBatch on an empty queue: %d frames", len(got))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := rx.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with nothing queued: %v", err)
	}
	woke := make(chan error, 1)
	go func() { woke <- rx.Wait(context.Background()) }()
	for _, p := range []string{"a", "b", "c"} {
		tx.Send(bus.QoSNo, "rx", []byte(p))
	}
	if err := <-woke; err != nil {
		t.Fatalf("Wait: %v", err)
	}
	got := rx.TakeBatch(nil, 2)
	got = rx.TakeBatch(got, 0)
	if len(got) != 3 || string(got[0].Payload) != "a" || string(got[2].Payload) != "c" {
		t.Fatalf("TakeBatch: %d frames", len(got))
	}
	rx.Close()
	if err := rx.Wait(context.Background()); err != nil {
		t.Fatalf("Wait after Close: %v", err)
	}
	if got := rx.TakeBatch(nil, 0); len(got) != 0 {
		t.Fatalf("TakeBatch after Close: %d frames", len(got))
	}
}
