package e2e

import (
	"testing"
	"time"
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
