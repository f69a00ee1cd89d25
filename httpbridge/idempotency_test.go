package httpbridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge"
)

// insertKeyed posts an insert with Idempotency-Key values.
func (e *env) insertKeyed(u user, keys []string, body map[string]any) reply {
	e.t.Helper()
	return e.doWith("POST", "/insert", u.bearer(), http.Header{httpbridge.IdempotencyKeyHeader: keys}, body)
}

// postKeyed is insertKeyed for a goroutine other than the test's (which must not fail the
// test): it returns the reply's status and body, or the request's error as the body.
func postKeyed(e *env, u user, key string, body map[string]any) (int, []byte) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", e.url+"/insert", bytes.NewReader(j))
	req.Header.Set("Authorization", u.bearer())
	req.Header.Set(httpbridge.IdempotencyKeyHeader, key)
	resp, err := e.cl.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// keyedID is the event id of a postKeyed answer, or what went wrong.
func keyedID(code int, body []byte) string {
	var out struct{ Event record }
	if code != 200 || json.Unmarshal(body, &out) != nil || out.Event.ID == "" {
		return fmt.Sprintf("%d %s", code, body)
	}
	return out.Event.ID
}

func (r reply) event(t testing.TB) record {
	t.Helper()
	var out struct{ Event record }
	r.json(t, &out)
	return out.Event
}

// collectionOf returns the published events of a collection.
func (e *env) collectionOf(u user, coll string) []record {
	e.t.Helper()
	var c struct{ Events []record }
	e.expect(e.do("GET", "/collections/"+coll, u.bearer(), nil), 200).json(e.t, &c)
	return c.Events
}

// A repeat of a keyed insert is answered with the first answer and stores and publishes
// nothing; a repeat asking for another event is refused (422); the key is per user.
func TestInsertIdempotencyKey(t *testing.T) {
	e := newEnv(t, nil)
	ann, bob := e.signup("ann", "acme"), e.signup("bob", "acme")
	zed := e.signup("zed", "other")
	s := e.openStream("/sse", ann.bearer(), nil)
	body := map[string]any{"event": "chat", "collection_id": "room", "data": map[string]any{"text": "<hi> & bye"}}

	first := e.expect(e.insertKeyed(ann, []string{"order-1"}, body), 200)
	rec := first.event(t)
	if len(rec.ID) != 36 || rec.ID[14] != '5' || !rec.Published {
		t.Fatalf("first answer: %s", first.body)
	}
	if m := s.next(t); m.record(t).ID != rec.ID {
		t.Fatalf("stream: %+v", m)
	}
	for i := 0; i < 3; i++ {
		again := e.expect(e.insertKeyed(ann, []string{"order-1"}, body), 200)
		if !bytes.Equal(again.body, first.body) {
			t.Fatalf("repeat %d answered\n%s\nfirst\n%s", i, again.body, first.body)
		}
	}
	// Without the collection (the first request's is kept) or with the timestamp stored.
	for _, b := range []map[string]any{
		{"event": "chat", "data": body["data"]},
		{"event": "chat", "data": body["data"], "collection_id": "room", "timestamp": rec.Timestamp},
	} {
		if got := e.expect(e.insertKeyed(ann, []string{"order-1"}, b), 200).event(t); got.ID != rec.ID {
			t.Fatalf("repeat %v: %+v", b, got)
		}
	}
	s.quiet(t, 200*time.Millisecond)
	if got := e.collectionOf(ann, "room"); len(got) != 1 || got[0].ID != rec.ID {
		t.Fatalf("collection after repeats: %+v", got)
	}

	// A repeat that asks for something else.
	for what, b := range map[string]map[string]any{
		"data":          {"event": "chat", "collection_id": "room", "data": map[string]any{"text": "other"}},
		"event":         {"event": "note", "collection_id": "room", "data": body["data"]},
		"collection_id": {"event": "chat", "collection_id": "hall", "data": body["data"]},
		"timestamp":     {"event": "chat", "collection_id": "room", "data": body["data"], "timestamp": rec.Timestamp - 5},
	} {
		r := e.expect(e.insertKeyed(ann, []string{"order-1"}, b), 422)
		if msg := r.field(t, "error"); !strings.Contains(msg, "Idempotency-Key") || !strings.Contains(msg, what) {
			t.Errorf("differing %s: %s", what, msg)
		}
	}
	s.quiet(t, 100*time.Millisecond)

	// The same key from another user of the tenant, or of another tenant, is another insert.
	other := e.expect(e.insertKeyed(bob, []string{"order-1"}, body), 200).event(t)
	if other.ID == rec.ID || other.UserID == rec.UserID {
		t.Fatalf("bob's insert with ann's key: %+v", other)
	}
	if m := s.next(t); m.record(t).ID != other.ID {
		t.Fatalf("stream: %+v", m)
	}
	if z := e.expect(e.insertKeyed(zed, []string{"order-1"}, body), 200).event(t); z.ID == rec.ID || z.ID == other.ID {
		t.Fatalf("another tenant's insert with the key: %+v", z)
	}
	if got := e.collectionOf(ann, "room"); len(got) != 2 {
		t.Fatalf("collection: %d events, want ann's and bob's", len(got))
	}

	// Keys that are not 1-255 bytes of visible ASCII, or given twice: 400 naming the header,
	// nothing stored.
	for what, keys := range map[string][]string{
		"empty": {""}, "long": {strings.Repeat("k", 256)}, "space": {"a b"}, "tab": {"a\tb"},
		"not ascii": {"clé"}, "twice": {"a", "b"},
	} {
		r := e.expect(e.insertKeyed(ann, keys, map[string]any{"event": "chat", "collection_id": "bad", "data": 1}), 400)
		if !strings.Contains(r.field(t, "error"), "Idempotency-Key") {
			t.Errorf("key %s: %s", what, r.body)
		}
	}
	e.expect(e.insertKeyed(ann, []string{strings.Repeat("~", 255)}, map[string]any{"event": "chat", "collection_id": "ok", "data": 1}), 200)
	if got := e.collectionOf(ann, "bad"); len(got) != 0 {
		t.Fatalf("refused keys stored %d events", len(got))
	}

	// After a restart the key still finds its event.
	e.restart()
	if got := e.expect(e.insertKeyed(ann, []string{"order-1"}, body), 200).event(t); got.ID != rec.ID || got.Seq != rec.Seq {
		t.Fatalf("repeat after a restart: %+v", got)
	}
	if got := e.collectionOf(ann, "room"); len(got) != 2 {
		t.Fatalf("collection after a restart: %d events", len(got))
	}
}

// A scheduled event's repeat is scheduled once: one publication when it falls due; a repeat
// after that answers the record as it now stands.
func TestInsertIdempotencyKeyScheduled(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.signup("ann", "acme")
	s := e.openStream("/sse", ann.bearer(), nil)
	at := e.clock.Now().Unix() + 60
	body := map[string]any{"event": "alarm", "collection_id": "c", "data": 1, "timestamp": at}
	first := e.expect(e.insertKeyed(ann, []string{"alarm-1"}, body), 200).event(t)
	if first.Published {
		t.Fatalf("future event published at insert: %+v", first)
	}
	if again := e.expect(e.insertKeyed(ann, []string{"alarm-1"}, body), 200).event(t); again.ID != first.ID || again.Published {
		t.Fatalf("repeat: %+v", again)
	}
	e.clock.Advance(61 * time.Second)
	if m := s.next(t); m.record(t).ID != first.ID {
		t.Fatalf("stream: %+v", m)
	}
	s.quiet(t, 300*time.Millisecond)
	later := e.expect(e.insertKeyed(ann, []string{"alarm-1"}, body), 200).event(t)
	if later.ID != first.ID || !later.Published {
		t.Fatalf("repeat after the publication: %+v", later)
	}
	// Cancelled, a repeat does not bring it back.
	body2 := map[string]any{"event": "alarm", "collection_id": "c", "data": 2, "timestamp": at + 600}
	r2 := e.expect(e.insertKeyed(ann, []string{"alarm-2"}, body2), 200).event(t)
	e.expect(e.do("POST", "/cancel/"+r2.ID, ann.bearer(), nil), 200)
	if got := e.expect(e.insertKeyed(ann, []string{"alarm-2"}, body2), 200).event(t); got.ID != r2.ID || !got.Cancelled {
		t.Fatalf("repeat of a cancelled event: %+v", got)
	}
	e.clock.Advance(700 * time.Second)
	s.quiet(t, 300*time.Millisecond)
	var ue struct{ Events []record }
	e.expect(e.do("GET", "/user_events", ann.bearer(), nil), 200).json(t, &ue)
	if len(ue.Events) != 2 {
		t.Fatalf("user_events: %d events, want 2", len(ue.Events))
	}
}

// Concurrent repeats store one event: every answer is that event's.
func TestInsertIdempotencyKeyConcurrent(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.signup("ann", "acme")
	s := e.openStream("/sse", ann.bearer(), nil)
	body := map[string]any{"event": "pay", "collection_id": "c", "data": map[string]int{"cents": 100}}
	const n = 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = keyedID(postKeyed(e, ann, "pay-42", body))
		}()
	}
	wg.Wait()
	for i := range n {
		if ids[i] != ids[0] || len(ids[0]) != 36 {
			t.Fatalf("answer %d: %q (first %q)", i, ids[i], ids[0])
		}
	}
	if m := s.next(t); m.record(t).ID != ids[0] {
		t.Fatalf("stream: %+v", m)
	}
	s.quiet(t, 300*time.Millisecond)
	if got := e.collectionOf(ann, "c"); len(got) != 1 {
		t.Fatalf("collection: %d events", len(got))
	}
}

// In a cluster, a keyed insert repeated on any node, at once or concurrently, is one event
// and one publication, and the stream holds one record of it; a repeat asking for another
// event is 422 on every node; a scheduled event's repeat fires once.
func TestClusterInsertIdempotencyKey(t *testing.T) {
	es, nodes := newLogCluster(t, 3)
	ann := es[0].signup("ann", "acme")
	var clients []*tclient
	for _, e := range es {
		clients = append(clients, mustOpen(t, streamTransports[0], e, "", ann.bearer(), nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := nodes[0].JetStream().Stream(ctx, "RTBUS_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := func() uint64 {
		info, err := raw.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}

	body := map[string]any{"event": "chat", "collection_id": "room", "data": map[string]any{"text": "<b>hi</b>"}}
	first := es[0].expect(es[0].insertKeyed(ann, []string{"k1"}, body), 200)
	rec := first.event(t)
	stored := lastSeq()
	// Repeats on every node, the first node's index has it, the others' perhaps not yet.
	for i := range 2 {
		for j, e := range es {
			r := e.expect(e.insertKeyed(ann, []string{"k1"}, body), 200)
			if !bytes.Equal(r.body, first.body) {
				t.Fatalf("repeat %d on node %d: %s, first %s", i, j+1, r.body, first.body)
			}
		}
	}
	for j, e := range es {
		r := e.expect(e.insertKeyed(ann, []string{"k1"}, map[string]any{"event": "chat", "data": "other"}), 422)
		if !strings.Contains(r.field(t, "error"), "data") {
			t.Fatalf("differing repeat on node %d: %s", j+1, r.body)
		}
	}
	if got := lastSeq(); got != stored {
		t.Fatalf("repeats wrote to the stream: last seq %d, was %d", got, stored)
	}
	for i, c := range clients {
		if m := c.next(t); m.record(t).ID != rec.ID {
			t.Fatalf("client %d: %+v", i, m)
		}
	}

	// Concurrent repeats on the three nodes.
	cbody := map[string]any{"event": "pay", "collection_id": "pay", "data": 7}
	ids := make([]string, 12)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = keyedID(postKeyed(es[i%3], ann, "pay-1", cbody))
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if len(ids[0]) != 36 || id != ids[0] {
			t.Fatalf("concurrent answer %d: %q, first %q", i, id, ids[0])
		}
	}

	// A scheduled event repeated on every node fires once.
	at := time.Now().Add(2 * time.Second).Unix()
	sbody := map[string]any{"event": "alarm", "collection_id": "s", "data": 1, "timestamp": at}
	sched := es[0].expect(es[0].insertKeyed(ann, []string{"s1"}, sbody), 200).event(t)
	for _, e := range es {
		if r := e.expect(e.insertKeyed(ann, []string{"s1"}, sbody), 200).event(t); r.ID != sched.ID {
			t.Fatalf("scheduled repeat: %+v", r)
		}
	}
	for i, c := range clients {
		if m := c.next(t); m.record(t).ID != ids[0] {
			t.Fatalf("client %d: %+v, want the concurrent insert", i, m)
		}
		if m := c.next(t); m.record(t).ID != sched.ID {
			t.Fatalf("client %d: %+v, want the scheduled event", i, m)
		}
	}
	for _, c := range clients {
		c.quiet(t, 500*time.Millisecond)
	}
	for j, e := range es {
		if r := e.expect(e.insertKeyed(ann, []string{"s1"}, sbody), 200).event(t); r.ID != sched.ID || !r.Published {
			t.Fatalf("repeat after the firing on node %d: %+v", j+1, r)
		}
		waitFor(t, "the collections on every node", func() bool {
			return len(e.collectionOf(ann, "room")) == 1 && len(e.collectionOf(ann, "pay")) == 1 && len(e.collectionOf(ann, "s")) == 1
		})
	}
}
