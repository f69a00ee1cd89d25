package sse

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// pollConns opens n long-polling connections of user u (session sess, tenant t) and releases
// them, so that they expire PollHold later.
func pollConns(tb testing.TB, h *Hub, n int, t, u, sess string, watch ...string) {
	tb.Helper()
	for range n {
		pc, err := h.Poll(0, StreamOptions{Tenant: t, User: u, Session: sess, Watch: watch})
		if err != nil {
			tb.Fatal(err)
		}
		pc.Watch()
		pc.Release()
	}
}

// TestPollExpiryFixesUserLists: one user's connections expiring in one sweep leave the hub's
// lists of that user's, its watcher's and its session's streams holding exactly the streams
// still open: a message to the user reaches those, a kill of the session ends those.
func TestPollExpiryFixesUserLists(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	h := NewHub(HubOptions{KeepAlive: 20 * time.Millisecond, PollHold: time.Minute,
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	t.Cleanup(h.Close)
	pollConns(t, h, 300, "t", "u1", "s1")
	pollConns(t, h, 200, "t", "u2", "s2", "u1") // a privileged watcher of u1
	now.Add(int64(30 * time.Second))
	pollConns(t, h, 5, "t", "u1", "s1") // opened later: they stay
	stay := make([]*stream, 0, 5)
	h.mu.RLock()
	for _, s := range h.users["u1"] {
		if s.user == "u1" && s.idleSince == now.Load() {
			stay = append(stay, s)
		}
	}
	h.mu.RUnlock()
	if len(stay) != 5 {
		t.Fatalf("%d late connections found", len(stay))
	}
	now.Add(int64(45 * time.Second)) // past PollHold for the first 500 only
	for deadline := time.Now().Add(10 * time.Second); h.Streams() != 5; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams left, want 5", h.Streams())
		}
	}
	h.mu.RLock()
	users, u2, sessions, s2, polls := len(h.users["u1"]), len(h.users["u2"]), len(h.sessions["s1"]), len(h.sessions["s2"]), len(h.polls)
	h.mu.RUnlock()
	if users != 5 || u2 != 0 || sessions != 5 || s2 != 0 || polls != 5 {
		t.Fatalf("lists after the expiry: u1 %d, u2 %d, s1 %d, s2 %d, polls %d; want 5 0 5 0 5", users, u2, sessions, s2, polls)
	}
	if n := h.Publish(Message{Tenant: "t", User: "u1", Event: "hi", Record: []byte(`{}`), Data: []byte(`{}`)}); n != 5 {
		t.Fatalf("a message to u1 reached %d streams, want 5", n)
	}
	for _, s := range stay {
		if s.tidx < 0 {
			t.Fatal("a connection opened later was forgotten")
		}
	}
	if n := h.KillSession("s1"); n != 5 {
		t.Fatalf("killing s1 ended %d streams, want 5", n)
	}
}

// BenchmarkPollExpiry: one user's n long-polling connections (one session) forgotten in one
// sweep, the hub's lock held throughout: as the sweep does it (batch), and one at a time, as
// it did before (one-by-one; each connection's removal from the user and session lists
// scans them).
func BenchmarkPollExpiry(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		for _, mode := range []string{"batch", "one-by-one"} {
			b.Run(fmt.Sprintf("%s/%d", mode, n), func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					h := NewHub(HubOptions{KeepAlive: time.Hour, PollHold: time.Nanosecond})
					pollConns(b, h, n, "t", "u", "s")
					var ss []*stream
					for _, s := range h.tenants["t"] {
						ss = append(ss, s)
					}
					now := time.Now().Add(time.Second).UnixNano()
					b.StartTimer()
					h.mu.Lock()
					if mode == "batch" {
						h.forgetPollsLocked(ss, now)
					} else {
						for _, s := range ss {
							if s.pollGone(now) {
								h.unregisterLocked(s, s.failed())
							}
						}
					}
					h.mu.Unlock()
					b.StopTimer()
					if h.Streams() != 0 {
						b.Fatalf("%d streams left", h.Streams())
					}
					h.Close()
				}
			})
		}
	}
}
