package e2e

import (
	"testing"
	"time"
)

// TestClusterScheduleLeaderKilled: the leader of the event log's stream is killed (SIGKILL)
// at the second scheduled events fall due (three each a second before, at, and a second
// after the kill). Each is published exactly once: streams on the surviving nodes get each
// once, every node's index holds each once, published, and a stream replayed from a cursor
// taken before them gets the same events with the same ids on every node, the killed node
// included once it has restarted and caught up.
func TestClusterScheduleLeaderKilled(t *testing.T) {
	s := startCluster(t, 3, "-keepalive", "1s")
	leader := s.streamLeader(t)
	rest := s.others(leader)
	u := signup(t, rest[0], rest[1], uname(t, "ann"), "acme-"+randomHex(4))
	fs := []*follower{follow(t, transports[0], rest[0], u), follow(t, transports[1], rest[1], u)}

	// An event published now gives a cursor from before the scheduled ones.
	first := insert(t, rest[0], u, map[string]any{"event": "w", "data": 0, "collection_id": "c"})
	for _, f := range fs {
		f.await([]string{first.ID}, 10*time.Second)
	}
	cursor := fs[0].st.lastID()

	const n = 9
	at := time.Now().Unix() + 4
	var ids []string
	for i := range n {
		ev := insert(t, rest[i%2], u, map[string]any{"event": "alarm", "data": i, "collection_id": "c", "timestamp": at + int64(i/3-1)})
		if ev.Published {
			t.Fatalf("published at insert: %+v", ev)
		}
		ids = append(ids, ev.ID)
	}
	if time.Now().After(time.Unix(at-1, 0).Add(-500 * time.Millisecond)) {
		t.Fatalf("the inserts took until %v, too close to their time %v", time.Now(), time.Unix(at-1, 0))
	}
	// The leader's schedules fire on a timer at their time and propose the publications to
	// the stream's replicas: kill it while they are on their way (the sleep overshoots by a
	// few milliseconds, more under load).
	time.Sleep(time.Until(time.Unix(at, 0)))
	leader.kill()
	killed := time.Now()
	t.Logf("leader %s killed %v after the events fell due", leader.name, killed.Sub(time.Unix(at, 0)))

	for _, f := range fs {
		f.await(ids, 30*time.Second)
	}
	t.Logf("all %d published on the survivors %v after the kill", n, time.Since(killed))
	for _, f := range fs {
		f.settle(time.Second)
	}

	leader.start()
	leader.waitReady(60 * time.Second)
	want := append([]string{first.ID}, ids...)
	for _, nd := range s.nodes {
		checkCollection(t, nd, u, "c", want, 20*time.Second)
		evs := userEvents(t, nd, u)
		for _, id := range ids {
			if e := evs[id]; !e.Published || e.Cancelled {
				t.Fatalf("on %s, %s is %+v, want published", nd.name, id, e)
			}
		}
		expect(t, do(t, nd, "POST", "/cancel/"+ids[0], u.bearer(), nil), 409)
	}
	// One publication per event, with one stream id, on every node.
	var ref []msg
	for _, nd := range s.nodes {
		got := replay(t, nd, u, cursor, n, 10*time.Second, 500*time.Millisecond)
		seen := map[string]bool{}
		for i, m := range got {
			id := m.record(t).ID
			if seen[id] || m.event != "alarm" {
				t.Fatalf("replay on %s: %+v", nd.name, got)
			}
			seen[id] = true
			if ref != nil && (ref[i].id != m.id || ref[i].record(t).ID != id) {
				t.Fatalf("replay on %s differs from %s's: %+v, %+v", nd.name, s.nodes[0].name, got, ref)
			}
		}
		ref = got
	}
	// The killed node's return brings no repeat to the open streams.
	for _, f := range fs {
		f.settle(500 * time.Millisecond)
	}
}
