package transport

import (
	"errors"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

// TestSendAsync: acks of frames sent without waiting reach their AckFunc with their ref and
// code, in the reading goroutine; the payload may be reused at once; and what is still
// unacknowledged when the connection ends gets the reason.
func TestSendAsync(t *testing.T) {
	_, path := testServer(t, Config{})
	a := dialTest(t, path, "a")
	b := dialTest(t, path, "b")
	type ack struct {
		ref uint64
		err error
	}
	acks := make(chan ack, 16)
	done := func(ref uint64, err error) { acks <- ack{ref, err} }
	payload := []byte("first")
	if err := a.SendAsync(bus.QoSProcessed, "b", payload, done, 1); err != nil {
		t.Fatal(err)
	}
	copy(payload, "XXXXX") // copied before SendAsync returned
	if err := a.SendAsync(bus.QoSRealtimeProcessed, "nobody", payload, done, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.SendAsync(bus.QoSNo, "nobody", payload, done, 3); err != nil { // no ack, no call
		t.Fatal(err)
	}
	if err := a.SendAsync(bus.QoSProcessed, "b", []byte("last"), nil, 4); err != nil { // acked, ignored
		t.Fatal(err)
	}
	for i, want := range []ack{{1, nil}, {2, bus.ErrNotRegistered}} {
		select {
		case got := <-acks:
			if got.ref != want.ref || !errors.Is(got.err, want.err) || (want.err == nil && got.err != nil) {
				t.Fatalf("ack %d: got ref %d err %v, want ref %d err %v", i, got.ref, got.err, want.ref, want.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ack %d never came", i)
		}
	}
	if f := recvOne(t, b); string(f.Payload) != "first" {
		t.Fatalf("b got %q, want the payload as it was at SendAsync", f.Payload)
	}
	if f := recvOne(t, b); string(f.Payload) != "last" {
		t.Fatalf("b got %q", f.Payload)
	}
	select {
	case got := <-acks:
		t.Fatalf("unexpected ack %+v", got)
	default:
	}

	// An ack still due when the connection ends: the reason, once.
	a.mu.Lock()
	w := waiters.Get().(*waiter)
	w.done, w.ref = done, 7
	a.pending[999999] = w // an op id the broker never acks
	a.mu.Unlock()
	a.Close()
	select {
	case got := <-acks:
		if got.ref != 7 || !errors.Is(got.err, bus.ErrClosed) {
			t.Fatalf("on close: ref %d err %v, want 7 and an error matching bus.ErrClosed", got.ref, got.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no AckFunc call when the connection ended")
	}
	if err := a.SendAsync(bus.QoSProcessed, "b", nil, done, 8); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("SendAsync on a closed client: %v", err)
	}
}

// TestSetHook: a hook sees delivered frames in order and consumes those it returns true
// for; the others reach Recv.
func TestSetHook(t *testing.T) {
	_, path := testServer(t, Config{})
	a := dialTest(t, path, "a")
	b := dialTest(t, path, "b")
	seen := make(chan string, 8)
	b.SetHook(func(f *bus.Frame) bool {
		seen <- string(f.Payload)
		return string(f.Payload) == "mine"
	})
	for _, p := range []string{"mine", "yours", "mine", "yours too"} {
		if err := a.Send(bus.QoSProcessed, "b", []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"yours", "yours too"} {
		if f := recvOne(t, b); string(f.Payload) != want || f.Sender != "a" {
			t.Fatalf("Recv: %q from %s, want %q", f.Payload, f.Sender, want)
		}
	}
	for _, want := range []string{"mine", "yours", "mine", "yours too"} {
		if got := <-seen; got != want {
			t.Fatalf("hook saw %q, want %q", got, want)
		}
	}
}
