package sse_test

import (
	"crypto/sha256"
	"testing"
	"time"

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
	a.LogRead(1)
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

func pub(h *sse.Hub, seq uint64) {
	h.Publish(sse.Message{Tenant: "acme", Seq: seq, Event: "e", Collection: "c", Record: []byte(`{}`)})
}

// pollOnce is one poll that read the log up to read and returns the connection.
func pollOnce(t *testing.T, h *sse.Hub, id uint64, opts sse.StreamOptions, read uint64) *sse.PollConn {
	t.Helper()
	pc, err := h.Poll(id, opts)
	if err != nil {
		t.Fatal(err)
	}
	pc.Watch()
	if _, _, _, complete, _ := pc.Take(read); complete {
		t.Fatalf("conn %d: first Take complete before any read of the log", pc.ID())
	}
	pc.LogRead(read)
	return pc
}

// TestPollHoldServesTheNextPoll: a connection polled again keeps queueing publications
// between polls, so that the next poll with the last reply's cursor is answered from the
// queue; another cursor, a filter change, a full queue or a connection never polled again
// mean a read of the log.
func TestPollHoldServesTheNextPoll(t *testing.T) {
	h := sse.NewHub(sse.HubOptions{QueueSize: 4})
	defer h.Close()
	opts := sse.StreamOptions{Tenant: "acme", User: "u1", Session: "s1"}

	// A new connection that is not polled again stops queueing at its Release.
	first := pollOnce(t, h, 0, opts, 0)
	first.Release()
	pub(h, 1)
	pc := pollOnce(t, h, first.ID(), opts, 1) // polled again: reads the log (1), then keeps queueing
	if pc.ID() != first.ID() {
		t.Fatalf("conn %d, want %d", pc.ID(), first.ID())
	}
	pc.Release()

	pub(h, 2)
	pub(h, 3)
	pc, _ = h.Poll(pc.ID(), opts)
	pc.Watch()
	if _, _, _, complete, _ := pc.Take(2); complete {
		t.Error("a cursor other than the last reply's: complete, want a read of the log")
	}
	pc.LogRead(3)
	pc.Release()

	pub(h, 4)
	pub(h, 5)
	pc, _ = h.Poll(pc.ID(), opts)
	pc.Watch()
	_, pubs, last, complete, _ := pc.Take(3)
	if !complete || len(pubs) != 2 || last != 5 {
		t.Fatalf("the next poll: %d publications up to %d, complete %v; want 2, 5, true", len(pubs), last, complete)
	}
	pc.Release()

	// Full while no poll waits: the queue stops and the next poll reads the log.
	for seq := uint64(6); seq <= 11; seq++ {
		pub(h, seq)
	}
	pc, _ = h.Poll(pc.ID(), opts)
	pc.Watch()
	if _, _, _, complete, _ := pc.Take(5); complete {
		t.Error("after the queue filled: complete, want a read of the log")
	}
	pc.LogRead(11)
	pc.Release()
	pub(h, 12)
	pc, _ = h.Poll(pc.ID(), opts)
	pc.Watch()
	if _, pubs, last, complete, _ := pc.Take(11); !complete || len(pubs) != 1 || last != 12 {
		t.Errorf("after the read of the log: %d publications up to %d, complete %v; want 1, 12, true", len(pubs), last, complete)
	}
	pc.Release()

	// Another filter: what was queued was filtered with the old one.
	pub(h, 13)
	narrow := opts
	narrow.Filter = sse.NewFilter([]string{"other"}, nil)
	pc, _ = h.Poll(pc.ID(), narrow)
	pc.Watch()
	if _, _, _, complete, _ := pc.Take(12); complete {
		t.Error("after a filter change: complete, want a read of the log")
	}
	pc.Release()
}

// TestPollCredential: a connection answers PollCredential for the credential it was bound
// to only, and not once it ended.
func TestPollCredential(t *testing.T) {
	h := sse.NewHub(sse.HubOptions{})
	defer h.Close()
	exp := time.Unix(1_900_000_000, 0)
	pc, err := h.Poll(0, sse.StreamOptions{Tenant: "acme", User: "u1", Username: "ann", Session: "s1", Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	tok, other := sha256.Sum256([]byte("token")), sha256.Sum256([]byte("other"))
	if _, ok := h.PollCredential(pc.ID(), tok); ok {
		t.Error("an unbound connection answered")
	}
	pc.SetCredential(tok)
	pc.Release()
	who, ok := h.PollCredential(pc.ID(), tok)
	want := sse.PollIdentity{Tenant: "acme", User: "u1", Username: "ann", Session: "s1", Expires: exp}
	if !ok || who != want {
		t.Errorf("bound: %+v %v, want %+v", who, ok, want)
	}
	if _, ok := h.PollCredential(pc.ID(), other); ok || !pc.HasCredential(tok) || pc.HasCredential(other) {
		t.Error("another credential answered")
	}
	if _, ok := h.PollCredential(pc.ID()+1, tok); ok {
		t.Error("another connection id answered")
	}
	h.KillSession("s1")
	if _, ok := h.PollCredential(pc.ID(), tok); ok {
		t.Error("a killed connection answered")
	}
}
