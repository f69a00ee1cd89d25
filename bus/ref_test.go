package bus_test

import (
	"sync/atomic"
	"testing"

	"github.com/rtbus/rtbus/bus"
)

// TestRefReleasedByEveryReceiver: a held payload's buffer is freed once, and only after the
// router and every receiver that queued a frame of it have let go.
func TestRefReleasedByEveryReceiver(t *testing.T) {
	b := newBroker(t)
	tx := mustRegister(t, b, "tx")
	rx1 := mustRegister(t, b, "rx1")
	rx2 := mustRegister(t, b, "rx2")
	for _, c := range []*bus.Client{rx1, rx2} {
		if err := c.Subscribe(bus.QoSProcessed, "t/#"); err != nil {
			t.Fatal(err)
		}
	}
	var freed atomic.Int32
	r := bus.NewRef(func() { freed.Add(1) })
	tx.Hold(r)
	if err := tx.Publish(bus.QoSProcessed, "t/1", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(bus.QoSProcessed, "rx1", []byte("b")); err != nil {
		t.Fatal(err)
	}
	tx.Hold(nil)
	if err := tx.Send(bus.QoSProcessed, "rx2", []byte("not held")); err != nil {
		t.Fatal(err)
	}
	r.Release() // the router is done: three queued frames still hold it
	held := []bus.Frame{recvFrame(t, rx1), recvFrame(t, rx1), recvFrame(t, rx2)}
	plain := recvFrame(t, rx2)
	plain.Release()
	for i := range held {
		if freed.Load() != 0 {
			t.Fatalf("freed after %d of 3 releases", i)
		}
		held[i].Release()
		held[i].Release() // a second call on the same frame is a no-op
	}
	if n := freed.Load(); n != 1 {
		t.Fatalf("freed %d times, want 1", n)
	}
}

// TestRefKeptByDroppedFrames: frames dropped with a closed client's queue never release
// their buffer, which is then left to the garbage collector rather than reused.
func TestRefKeptByDroppedFrames(t *testing.T) {
	b := newBroker(t)
	tx := mustRegister(t, b, "tx")
	rx := mustRegister(t, b, "rx")
	var freed atomic.Int32
	r := bus.NewRef(func() { freed.Add(1) })
	tx.Hold(r)
	if err := tx.Send(bus.QoSProcessed, "rx", []byte("x")); err != nil {
		t.Fatal(err)
	}
	rx.Close()
	r.Release()
	if n := freed.Load(); n != 0 {
		t.Fatalf("freed %d times with a frame unreleased", n)
	}
}
