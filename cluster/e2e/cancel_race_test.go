package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClusterCancelRacesFiring: twenty events fall due in the same second, and each is
// cancelled at about that moment (from 40 ms before to 55 ms after) through another node
// than the one that took it. Each ends in one of two ways, the same on every node: cancelled
// (the cancel answered 200) and never published, or published once (the cancel answered 409
// "already published"). No other answer, no event both, no stream sees a cancelled one.
func TestClusterCancelRacesFiring(t *testing.T) {
	s := startCluster(t, 3, "-keepalive", "1s")
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme-"+randomHex(4))
	var fs []*follower
	for i, tr := range transports {
		fs = append(fs, follow(t, tr, s.at(i), u))
	}

	const n = 20
	at := time.Now().Unix() + 3
	ids := make([]string, n)
	for i := range n {
		ev := insert(t, s.at(0), u, map[string]any{"event": "alarm", "data": i, "collection_id": "c", "timestamp": at})
		ids[i] = ev.ID
	}
	// The cancelling nodes know every event before the race starts (else a cancel would
	// first wait for its index, and race nothing).
	for _, nd := range s.nodes[1:] {
		eventually(t, 10*time.Second, "the events on "+nd.name, func() bool { return len(userEvents(t, nd, u)) == n })
	}
	if time.Now().After(time.Unix(at, 0).Add(-200 * time.Millisecond)) {
		t.Fatalf("the inserts took until %v, too close to their time %v", time.Now(), time.Unix(at, 0))
	}

	// cancelled[id]: the verdict the cancel gave, true for 200, false for 409 published.
	cancelled := make(map[string]bool, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var bad []string
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd := s.at(1 + i%2)
			time.Sleep(time.Until(time.Unix(at, 0).Add(time.Duration(i*5-40) * time.Millisecond)))
			r := send(nd, "POST", "/cancel/"+id, u.bearer(), nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.err == nil && r.code == 200:
				cancelled[id] = true
			case r.err == nil && r.code == 409 && strings.Contains(string(r.body), "already published"):
				cancelled[id] = false
			default:
				bad = append(bad, fmt.Sprintf("cancel %d of %s on %s: %d %s %v", i, id, nd.name, r.code, r.body, r.err))
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("cancels answered neither 200 nor 409 already published:\n%s", strings.Join(bad, "\n"))
	}
	var published []string
	for _, id := range ids {
		if !cancelled[id] {
			published = append(published, id)
		}
	}
	t.Logf("%d cancelled, %d published", n-len(published), len(published))

	// Streams get each published event once, and no cancelled one: the schedules of the
	// cancelled ones are gone, so nothing comes after the wait.
	for _, f := range fs {
		f.await(published, 15*time.Second)
	}
	for _, f := range fs {
		f.settle(time.Second)
		for id, c := range cancelled {
			if c && f.seen[id] > 0 {
				t.Fatalf("%s follower on %s got %s, whose cancel answered 200", f.tr.name, f.on.name, id)
			}
		}
	}

	// Every node's index gives the same verdict as the cancel did.
	for _, nd := range s.nodes {
		var diff []string
		deadline := time.Now().Add(10 * time.Second)
		for {
			evs := userEvents(t, nd, u)
			diff = diff[:0]
			for _, id := range ids {
				e := evs[id]
				if e.Cancelled != cancelled[id] || e.Published == cancelled[id] {
					diff = append(diff, fmt.Sprintf("%s: cancel said cancelled=%v, index has published=%v cancelled=%v", id, cancelled[id], e.Published, e.Cancelled))
				}
			}
			if len(diff) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("on %s, after 10 s:\n%s", nd.name, strings.Join(diff, "\n"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		var col struct{ Events []record }
		expect(t, do(t, nd, "GET", "/collections/c", u.bearer(), nil), 200).json(t, &col)
		if len(col.Events) != len(published) {
			t.Fatalf("collection on %s holds %d events, want the %d published", nd.name, len(col.Events), len(published))
		}
		for _, id := range ids {
			r := expect(t, do(t, nd, "GET", "/cancel/"+id, u.bearer(), nil), 409)
			want := "already published"
			if cancelled[id] {
				want = "already cancelled"
			}
			if !strings.Contains(string(r.body), want) {
				t.Fatalf("a second cancel of %s on %s: %s, want %q", id, nd.name, r.body, want)
			}
		}
	}
}
