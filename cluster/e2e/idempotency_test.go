package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// insertKeyed inserts on n with an Idempotency-Key header.
func insertKeyed(t *testing.T, n *node, u user, key string, body map[string]any) reply {
	t.Helper()
	r := sendWith(n, "POST", "/insert", u.bearer(), http.Header{"Idempotency-Key": {key}}, body)
	if r.err != nil {
		t.Fatalf("insert on %s: %v", n.name, r.err)
	}
	return r
}

// A keyed insert repeated on every node, one after another or at once, is one event and one
// publication, answered with the first answer; a repeat asking for another event is 422; a
// bad key 400; the same key from another user is another event. A scheduled event's repeats
// fire once.
func scenarioIdempotentInsert(t *testing.T, s *system) {
	tenant := "acme-" + randomHex(4)
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), tenant)
	v := signup(t, s.at(1), s.at(2), uname(t, "bob"), tenant)
	var streams []*stream
	for i := range 3 {
		streams = append(streams, mustOpen(t, transports[i], s.at(i), "", u.token, ""))
	}
	body := map[string]any{"event": "order", "collection_id": "orders", "data": map[string]any{"item": "<tea> & milk"}}
	first := expect(t, insertKeyed(t, s.at(0), u, "order-1", body), 200)
	var rec struct{ Event record }
	first.json(t, &rec)
	for i := range 3 {
		r := expect(t, insertKeyed(t, s.at(i), u, "order-1", body), 200)
		if !bytes.Equal(r.body, first.body) {
			t.Fatalf("repeat on %s: %s, first %s", s.at(i).name, r.body, first.body)
		}
	}
	r := expect(t, insertKeyed(t, s.at(2), u, "order-1", map[string]any{"event": "order", "collection_id": "orders", "data": 2}), 422)
	if !strings.Contains(r.field(t, "error"), "Idempotency-Key") {
		t.Fatalf("differing repeat: %s", r.body)
	}
	r = expect(t, insertKeyed(t, s.at(1), u, "bad key", body), 400)
	if !strings.Contains(r.field(t, "error"), "Idempotency-Key") {
		t.Fatalf("bad key: %s", r.body)
	}
	var other struct{ Event record }
	expect(t, insertKeyed(t, s.at(1), v, "order-1", body), 200).json(t, &other)
	if other.Event.ID == rec.Event.ID {
		t.Fatalf("another user's insert with the key: %+v", other.Event)
	}

	// At once, on every node.
	const n = 9
	answers := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = sendWith(s.at(i), "POST", "/insert", u.bearer(), http.Header{"Idempotency-Key": {"pay-1"}}, map[string]any{"event": "pay", "collection_id": "orders", "data": 1})
		}()
	}
	wg.Wait()
	for i, a := range answers {
		if a.err != nil || a.code != 200 || !bytes.Equal(a.body, answers[0].body) {
			t.Fatalf("concurrent repeat %d: %d %s %v; first %s", i, a.code, a.body, a.err, answers[0].body)
		}
	}
	var pay struct{ Event record }
	answers[0].json(t, &pay)

	// A scheduled event, repeated on every node, fires once.
	sbody := map[string]any{"event": "alarm", "collection_id": "orders", "data": 1, "timestamp": time.Now().Unix() + 2}
	var sched struct{ Event record }
	expect(t, insertKeyed(t, s.at(0), u, "alarm-1", sbody), 200).json(t, &sched)
	for i := range 3 {
		expect(t, insertKeyed(t, s.at(i), u, "alarm-1", sbody), 200)
	}

	want := []string{rec.Event.ID, other.Event.ID, pay.Event.ID, sched.Event.ID}
	for i, st := range streams {
		for _, id := range want {
			if m := st.next(t, 20*time.Second); m.record(t).ID != id {
				t.Fatalf("%s stream on %s: %+v, want %s", transports[i].name, s.at(i).name, m, id)
			}
		}
	}
	for _, st := range streams {
		st.quiet(t, 500*time.Millisecond)
	}
	for i := range 3 {
		if got := visible(t, s.at(i), u, "orders", 4); len(got) != 4 {
			t.Fatalf("collection on %s: %d events, want 4", s.at(i).name, len(got))
		}
	}
}
