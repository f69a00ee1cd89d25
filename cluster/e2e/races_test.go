package e2e

import (
	"sync"
	"testing"
	"time"
)

// scenarioCancelRace: events are cancelled, each on another node, at the second they fall
// due. Each cancel is answered 200 (and the event is never published) or 409 (and it is
// published, once).
func scenarioCancelRace(t *testing.T, s *system) {
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme-"+randomHex(4))
	var fs []*follower
	for _, n := range s.nodes {
		fs = append(fs, follow(t, transports[0], n, u))
	}
	due := time.Now().Add(3 * time.Second).Truncate(time.Second)
	const n = 24
	ids := make([]string, n)
	for i := range n {
		ids[i] = insert(t, s.at(i), u, map[string]any{"event": "alarm", "data": i, "collection_id": "c", "timestamp": due.Unix()}).ID
	}
	for i := range n { // every node knows every event before the race
		eventually(t, 10*time.Second, "the event on every node", func() bool {
			var ue struct{ Events []record }
			expect(t, do(t, s.at(i+1), "GET", "/user_events", u.bearer(), nil), 200).json(t, &ue)
			return len(ue.Events) == n
		})
	}
	// Cancels spread from 300 ms before the time to 300 ms after it.
	time.Sleep(time.Until(due.Add(-300 * time.Millisecond)))
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 600 * time.Millisecond / n)
			r := send(s.at(i+1), "POST", "/cancel/"+ids[i], u.bearer(), nil)
			codes[i] = r.code
			if r.err != nil {
				t.Errorf("cancel %d: %v", i, r.err)
			}
		}()
	}
	wg.Wait()
	var published, cancelled []string
	for i, c := range codes {
		switch c {
		case 200:
			cancelled = append(cancelled, ids[i])
		case 409:
			published = append(published, ids[i])
		default:
			t.Fatalf("cancel %d: status %d", i, c)
		}
	}
	t.Logf("%d cancelled, %d already published", len(cancelled), len(published))
	// One more event marks the end of what the streams may still bring.
	end := insert(t, s.at(0), u, map[string]any{"event": "w", "data": "end", "collection_id": "c"})
	for _, f := range fs {
		f.await(append(published, end.ID), 30*time.Second)
		f.drain()
		for _, id := range cancelled {
			if f.seen[id] > 0 {
				t.Fatalf("%s: event %s was cancelled (200) and published", f.on.name, id)
			}
		}
	}
	for _, nd := range s.nodes {
		checkCollection(t, nd, u, "c", append(published, end.ID), 10*time.Second)
		var out struct{ Events []record }
		expect(t, do(t, nd, "GET", "/collections/c", u.bearer(), nil), 200).json(t, &out)
		if len(out.Events) != len(published)+1 {
			t.Fatalf("collection on %s: %d events, want %d", nd.name, len(out.Events), len(published)+1)
		}
	}
}

// scenarioConcurrentSignups: the same usernames signed up at once on every node: each name
// is given once, and every node knows it as the one user.
func scenarioConcurrentSignups(t *testing.T, s *system) {
	names := []string{uname(t, "a"), uname(t, "b"), uname(t, "c"), uname(t, "d")}
	type result struct {
		name, id string
		code     int
	}
	results := make(chan result, 64)
	var wg sync.WaitGroup
	for _, name := range names {
		for i := range 6 { // twice per node
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := send(s.at(i), "POST", "/users", "", map[string]any{"username": name, "password": "pw-" + name, "tenant_id": "t" + name})
				res := result{name: name, code: r.code}
				if r.code == 201 {
					res.id = r.field(t, "id")
				}
				results <- res
			}()
		}
	}
	wg.Wait()
	close(results)
	ids := map[string]string{}
	for r := range results {
		switch {
		case r.code == 201 && ids[r.name] != "":
			t.Errorf("%s signed up twice: %s and %s", r.name, ids[r.name], r.id)
		case r.code == 201:
			ids[r.name] = r.id
		case r.code != 409:
			t.Errorf("sign-up of %s: %d", r.name, r.code)
		}
	}
	for _, name := range names {
		if ids[name] == "" {
			t.Fatalf("%s: no sign-up succeeded", name)
		}
		u := user{name: name, pass: "pw-" + name}
		for i := range 3 {
			tok := login(t, s.at(i), u)
			r := expect(t, do(t, s.at(i), "GET", "/verify", "Bearer "+tok, nil), 200)
			if r.field(t, "id") != ids[name] {
				t.Fatalf("%s on %s is %s, want %s", name, s.at(i).name, r.field(t, "id"), ids[name])
			}
		}
	}
}
