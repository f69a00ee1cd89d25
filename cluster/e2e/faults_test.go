package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rtbus/rtbus/cluster/clustertest"
)

// TestClusterQuorumLost: with two nodes of three down, an insert fails fast with 503 on the
// third; reads and open streams go on there; once a node is back, inserts work again.
func TestClusterQuorumLost(t *testing.T) {
	s := startCluster(t, 3, "-keepalive", "1s")
	u := signup(t, s.at(0), s.at(0), uname(t, "ann"), "acme")
	a := insert(t, s.at(0), u, map[string]any{"event": "w", "data": 1, "collection_id": "c"})
	checkCollection(t, s.at(0), u, "c", []string{a.ID}, 10*time.Second)
	f := follow(t, transports[0], s.at(0), u)

	s.at(1).kill()
	s.at(2).kill()
	start := time.Now()
	r := do(t, s.at(0), "POST", "/insert", u.bearer(), map[string]any{"event": "w", "data": 2, "collection_id": "c"})
	took := time.Since(start)
	expect(t, r, 503)
	t.Logf("insert without quorum: 503 after %v", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("insert without quorum took %v to fail", took)
	}
	// Reads answer from the node's index; the open stream stays open.
	checkCollection(t, s.at(0), u, "c", []string{a.ID}, time.Second)
	var ue struct{ Events []record }
	expect(t, do(t, s.at(0), "GET", "/user_events", u.bearer(), nil), 200).json(t, &ue)
	if len(ue.Events) != 1 || ue.Events[0].ID != a.ID {
		t.Fatalf("user_events without quorum: %+v", ue.Events)
	}
	expect(t, do(t, s.at(0), "GET", "/verify", u.bearer(), nil), 200)
	if f.st.ended() {
		t.Fatal("the open stream ended when quorum was lost")
	}

	s.at(1).start()
	s.at(1).waitReady(60 * time.Second)
	var b record
	eventually(t, 30*time.Second, "an insert once quorum is back", func() bool {
		r := do(t, s.at(0), "POST", "/insert", u.bearer(), map[string]any{"event": "w", "data": 3, "collection_id": "c"})
		if r.code == 200 {
			var out struct{ Event record }
			r.json(t, &out)
			b = out.Event
		}
		return r.code == 200
	})
	f.await([]string{b.ID}, 10*time.Second)
}

// TestClusterNodeKilled: the event log's leader is killed (SIGKILL) while clients insert
// through every node and follow the tenant on each node, one transport each. Inserts go on
// through the others, a schedule falls due and is published, the killed node's client
// resumes on another node; when the node is back its index catches up. Every acknowledged
// event reaches every client exactly once.
func TestClusterNodeKilled(t *testing.T) {
	s := startCluster(t, 3)
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme")
	leader := s.streamLeader(t)
	var fs []*follower
	for i, n := range s.nodes {
		fs = append(fs, follow(t, transports[i%len(transports)], n, u))
	}
	w := startWriter(t, u, "c", s.nodes, 0)
	w.waitAcks(t, 20, 30*time.Second, "before the kill")

	leader.kill()
	rest := s.others(leader)
	w.waitAcks(t, 20, 30*time.Second, "after the kill of "+leader.name)
	alarm := insert(t, rest[0], u, map[string]any{"event": "alarm", "data": 1, "collection_id": "c", "timestamp": time.Now().Unix() + 2})
	for _, f := range fs {
		if f.on == leader {
			f.resume(rest[1])
		}
	}

	leader.start()
	leader.waitReady(60 * time.Second)
	w.waitAcks(t, 20, 30*time.Second, "after "+leader.name+" came back")
	want := append(w.ids(), alarm.ID)
	for _, f := range fs {
		f.await(want, 30*time.Second)
	}
	for _, n := range s.nodes {
		checkCollection(t, n, u, "c", want, 30*time.Second)
	}
	// A client of the node that came back resumes there too.
	back := follow(t, transports[0], leader, u)
	late := insert(t, leader, u, map[string]any{"event": "w", "data": "late", "collection_id": "c"})
	back.await([]string{late.ID}, 10*time.Second)
}

// TestClusterPartition: every route link goes through a TCP proxy (see
// startClusterBehindProxies). A node that does not lead the event log is cut off from the
// others while clients insert through every node, the cut one included, and follow the
// tenant on every node, one transport each; then the links heal. The majority goes on; no
// acknowledged event is lost and none is published twice, on any node. (TestClusterPartitionOfLeader
// cuts off the leader.)
func TestClusterPartition(t *testing.T) {
	s, proxies := startClusterBehindProxies(t, 3)
	leader := s.streamLeader(t)
	cutOff := s.others(leader)[1]
	k := slices.Index(s.nodes, cutOff)
	links := func(f func(*clustertest.Proxy)) {
		for i := range proxies {
			for j, p := range proxies[i] {
				if p != nil && (i == k || j == k) {
					f(p)
				}
			}
		}
	}
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme")
	var fs []*follower
	for i, nd := range s.nodes {
		fs = append(fs, follow(t, transports[i%len(transports)], nd, u))
	}
	w := startWriter(t, u, "c", s.nodes, 0)
	w.waitAcks(t, 20, 30*time.Second, "before the partition")

	start := time.Now()
	links((*clustertest.Proxy).Cut)
	// The majority goes on; the node cut off loses quorum and says so.
	eventually(t, 30*time.Second, "the node cut off not ready", func() bool { return !cutOff.ready() })
	t.Logf("%s not ready %v after the cut", cutOff.name, time.Since(start).Round(time.Millisecond))
	// Slowly: the writer's inserts through the cut node wait for their timeout.
	w.waitAcks(t, 10, 60*time.Second, "during the partition")
	t.Logf("10 inserts acknowledged %v after the cut", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	links((*clustertest.Proxy).Heal)
	eventually(t, 60*time.Second, "the node cut off ready again", cutOff.ready)
	t.Logf("%s ready %v after the heal", cutOff.name, time.Since(start).Round(time.Millisecond))
	w.waitAcks(t, 20, 60*time.Second, "after the partition healed")
	t.Logf("20 inserts acknowledged %v after the heal", time.Since(start).Round(time.Millisecond))
	want := w.ids()
	for _, f := range fs {
		if f.st.ended() { // a stream the partition ended resumes where it was
			f.resume(f.on)
		}
		f.await(want, 60*time.Second)
		f.st.quiet(t, 300*time.Millisecond)
		f.drain()
		if len(f.dups) > 0 {
			t.Fatalf("%s: delivered twice: %v", f.on.name, f.dups)
		}
	}
	for _, nd := range s.nodes {
		checkCollection(t, nd, u, "c", want, 30*time.Second)
	}
}

// TestClusterIndexRebuilt: a node whose index is deleted while it is down rebuilds it from
// the event log: collections, user events and resumed streams are as before.
func TestClusterIndexRebuilt(t *testing.T) {
	s := startCluster(t, 3)
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme")
	f := follow(t, transports[0], s.at(1), u)
	var ids []string
	for i := range 10 {
		ids = append(ids, insert(t, s.at(i), u, map[string]any{"event": "w", "data": i, "collection_id": "c"}).ID)
	}
	cancelled := insert(t, s.at(0), u, map[string]any{"event": "w", "data": "never", "collection_id": "c", "timestamp": time.Now().Unix() + 600})
	expect(t, do(t, s.at(0), "POST", "/cancel/"+cancelled.ID, u.bearer(), nil), 200)
	f.await(ids, 10*time.Second)
	checkCollection(t, s.at(1), u, "c", ids, 10*time.Second)

	s.at(1).stop()
	if err := os.RemoveAll(filepath.Join(s.at(1).dataDir, "db")); err != nil {
		t.Fatal(err)
	}
	// The node that stopped may have held what the others' indexes read the log through:
	// they may answer 503 until they follow it again.
	more := insertRetry(t, s.at(0), u, map[string]any{"event": "w", "data": "while down", "collection_id": "c"})
	ids = append(ids, more.ID)
	s.at(1).start()
	s.at(1).waitReady(60 * time.Second)
	checkCollection(t, s.at(1), u, "c", ids, 30*time.Second)
	var ue struct{ Events []record }
	expect(t, do(t, s.at(1), "GET", "/user_events", u.bearer(), nil), 200).json(t, &ue)
	// Every event inserted, each once (with any that a 503 above left stored).
	byID := map[string]int{}
	for _, e := range ue.Events {
		byID[e.ID]++
	}
	for _, id := range append(ids, cancelled.ID) {
		if byID[id] != 1 {
			t.Fatalf("user_events on the rebuilt node: %s %d times", id, byID[id])
		}
	}
	for _, e := range ue.Events {
		if e.ID == cancelled.ID && (!e.Cancelled || e.Published) {
			t.Fatalf("the cancelled event after the rebuild: %+v", e)
		}
	}
	expect(t, do(t, s.at(1), "POST", "/cancel/"+cancelled.ID, u.bearer(), nil), 409)
	// The client resumes on the rebuilt node with the cursor it had: what it missed, once.
	f.resume(s.at(1))
	f.await(ids, 10*time.Second)
	f.st.quiet(t, 200*time.Millisecond)
}
