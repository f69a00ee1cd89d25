package sse_test

import (
	"testing"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// TestPollsSharingAConnection: a client that polls again before its last poll ended has two
// polls on one connection; neither may take the other's publications, so both read the log.
func TestPollsSharingAConnection(t *testing.T) {
	h := sse.NewHub(sse.HubOptions{})
	defer h.Close()
	opts := sse.StreamOptions{Tenant: "acme", User: "u1", Session: "s1"}
	a, err := h.Poll(0, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Poll(a.ID(), opts)
	if err != nil || b.ID() != a.ID() {
		t.Fatalf("second poll: %v, conn %d, want %d", err, b.ID(), a.ID())
	}
	a.Watch()
	b.Watch()
	h.Publish(sse.Message{Tenant: "acme", Seq: 1, Event: "e", Record: []byte(`{}`)})
	if _, _, _, complete, _ := a.Take(0); complete {
		t.Error("first of two polls: complete, want a read of the log")
	}
	if _, _, _, complete, _ := b.Take(0); complete {
		t.Error("second of two polls: complete, want a read of the log (the first took the queue)")
	}
	b.Release()
	h.Publish(sse.Message{Tenant: "acme", Seq: 2, Event: "e", Record: []byte(`{}`)})
	if _, pubs, last, complete, _ := a.Take(1); !complete || len(pubs) != 1 || last != 2 {
		t.Errorf("a lone poll: %d publications up to %d, complete %v; want 1, 2, true", len(pubs), last, complete)
	}
	a.Release()
}

// TestPollConnectionPerSession: a poll with another session's token gets a connection of its
// own, so that killing one session ends only that session's polls.
func TestPollConnectionPerSession(t *testing.T) {
	h := sse.NewHub(sse.HubOptions{})
	defer h.Close()
	old, err := h.Poll(0, sse.StreamOptions{Tenant: "acme", User: "u1", Session: "old"})
	if err != nil {
		t.Fatal(err)
	}
	old.Release()
	fresh, err := h.Poll(old.ID(), sse.StreamOptions{Tenant: "acme", User: "u1", Session: "new"})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Release()
	if fresh.ID() == old.ID() {
		t.Fatal("a new session reused the old session's connection")
	}
	if n := h.KillSession("old"); n != 1 || fresh.Err() != nil || old.Err() == nil {
		t.Errorf("killing the old session: %d ended, fresh %v, old %v", n, fresh.Err(), old.Err())
	}
	if n := h.KillSession("new"); n != 1 || fresh.Err() == nil {
		t.Errorf("killing the new session: %d ended, fresh %v", n, fresh.Err())
	}
}
