package sse

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowSweepDelaysNoPublication: while the keep-alive sweep is held up by one stream (here
// a stream whose lock is held), a stream can still open and a publication still reaches it:
// the sweep holds no lock of the hub while it visits the streams.
func TestSlowSweepDelaysNoPublication(t *testing.T) {
	var sweeps atomic.Int64
	h := NewHub(HubOptions{KeepAlive: 20 * time.Millisecond, Now: func() time.Time {
		sweeps.Add(1) // also counts the streams made below: only an increase matters
		return time.Now()
	}})
	t.Cleanup(h.Close)
	stuck := h.newStream(tSSE, StreamOptions{Tenant: "a"})
	stuck.notify = make(chan struct{}, 1)
	if !h.register(stuck) {
		t.Fatal("hub closed")
	}

	stuck.mu.Lock() // the next sweep waits here
	n := sweeps.Load()
	for deadline := time.Now().Add(10 * time.Second); sweeps.Load() == n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			stuck.mu.Unlock()
			t.Fatal("no sweep started")
		}
	}
	done := make(chan int)
	go func() {
		s := h.newStream(tSSE, StreamOptions{Tenant: "b"})
		s.notify = make(chan struct{}, 1)
		h.register(s)
		done <- h.Publish(Message{Tenant: "b", Seq: 1, Event: "e", Record: []byte(`{}`), Data: []byte(`{}`)})
	}()
	select {
	case n := <-done:
		stuck.mu.Unlock()
		if n != 1 {
			t.Fatalf("publication queued on %d streams, want 1", n)
		}
	case <-time.After(10 * time.Second):
		stuck.mu.Unlock()
		<-done
		t.Fatal("a stream could not open, or a publication not be queued, while the sweep waited")
	}
}
