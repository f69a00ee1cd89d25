package httpbridge_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtbus/rtbus/cluster"
	"github.com/rtbus/rtbus/cluster/clustertest"
	"github.com/rtbus/rtbus/httpbridge"
)

// newLogCluster starts n in-process cluster nodes, each with its own bridge on the local
// clock (JetStream fires schedules on real time).
func newLogCluster(t testing.TB, n int) ([]*env, []*cluster.Node) {
	t.Helper()
	nodes := clustertest.Start(t, n)
	var es []*env
	for _, nd := range nodes {
		es = append(es, newEnv(t, func(c *httpbridge.Config) {
			c.Cluster, c.JWTSecret, c.Clock = nd, "cluster-test-secret", nil
		}))
	}
	return es, nodes
}

var clusterCursor = regexp.MustCompile(`^[0-9a-f]{16}\.[1-9][0-9]*$`)

// cursorSeq is the sequence of a cluster cursor.
func cursorSeq(t *testing.T, id string) uint64 {
	t.Helper()
	if !clusterCursor.MatchString(id) {
		t.Fatalf("id %q is not a cluster cursor", id)
	}
	n, _ := strconv.ParseUint(id[strings.IndexByte(id, '.')+1:], 10, 64)
	return n
}

// An insert on node 1 is in its own answer's reads at once (read-your-writes), and reaches
// the state, collections and open streams of nodes 2 and 3 on every transport, once, with
// the same cursor everywhere; a retried insert is stored once; a client resumes on node 2
// with node 1's cursor, missing nothing and getting nothing twice.
func TestClusterLogInsertEverywhere(t *testing.T) {
	es, _ := newLogCluster(t, 3)
	e1, e2, e3 := es[0], es[1], es[2]
	ann, bob, cat := e1.signup("ann", "acme"), e2.signup("bob", "acme"), e3.signup("cat", "acme")

	var clients []*tclient
	for _, tr := range streamTransports {
		clients = append(clients, mustOpen(t, tr, e2, "", bob.bearer(), nil), mustOpen(t, tr, e3, "", cat.bearer(), nil))
	}
	first := e1.insert(ann, map[string]any{"event": "chat", "collection_id": "room", "data": map[string]any{"n": 1}})
	if !first.Published || first.Seq == 0 {
		t.Fatalf("insert answered %+v", first)
	}
	// Read-your-writes on node 1.
	var coll struct{ Events []record }
	e1.expect(e1.do("GET", "/collections/room", ann.bearer(), nil), 200).json(t, &coll)
	if len(coll.Events) != 1 || coll.Events[0].ID != first.ID {
		t.Fatalf("node 1 collection right after the insert: %+v", coll.Events)
	}
	var id1 string
	for i, c := range clients {
		m := c.next(t)
		if m.event != "chat" || m.record(t).ID != first.ID || cursorSeq(t, m.id) != first.Seq {
			t.Fatalf("client %d: %+v, want chat %s", i, m, first.ID)
		}
		if id1 == "" {
			id1 = m.id
		} else if m.id != id1 {
			t.Fatalf("client %d: id %s, another client %s", i, m.id, id1)
		}
	}
	for i, e := range []*env{e2, e3} {
		u := []user{bob, cat}[i]
		waitFor(t, "the collection on another node", func() bool {
			var c struct{ Events []record }
			e.expect(e.do("GET", "/collections/room", u.bearer(), nil), 200).json(t, &c)
			return len(c.Events) == 1 && c.Events[0].Seq == first.Seq
		})
	}

	// More inserts on node 3 while a client is away; it resumes on node 2 with its cursor
	// from node 1, on every transport.
	var later []record
	for i := 0; i < 3; i++ {
		later = append(later, e3.insert(cat, map[string]any{"event": "chat", "collection_id": "room", "data": i}))
	}
	for i, c := range clients {
		for _, want := range later {
			if m := c.next(t); m.record(t).ID != want.ID {
				t.Fatalf("live client %d: %+v, want %s", i, m, want.ID)
			}
		}
	}
	for _, tr := range streamTransports {
		c := mustOpen(t, tr, e2, "", bob.bearer(), map[string]string{"Last-Event-ID": id1})
		for _, want := range later {
			if m := c.next(t); m.record(t).ID != want.ID || cursorSeq(t, m.id) != want.Seq {
				t.Fatalf("%s resumed on node 2: %+v, want %s", tr.name, m, want.ID)
			}
		}
		c.quiet(t, 200*time.Millisecond)
		c.close()
	}
	// State on node 2 (no cursor): the latest of (chat, room), with the cursor of the state.
	c := mustOpen(t, streamTransports[0], e2, "", bob.bearer(), nil)
	if m := c.next(t); m.record(t).ID != later[2].ID || cursorSeq(t, m.id) != later[2].Seq {
		t.Fatalf("state on node 2: %+v", m)
	}
	c.close()
}

// A retried publish of the same event id is stored once (JetStream de-duplicates by event
// id); the index drops repeats beyond the de-duplication window too.
func TestClusterLogRetriedInsertStoredOnce(t *testing.T) {
	es, nodes := newLogCluster(t, 1)
	e := es[0]
	ann := e.signup("ann", "acme")
	r := e.insert(ann, map[string]any{"event": "x", "collection_id": "c", "data": 1})
	// Publish the very record again, as a writer whose acknowledgement was lost would.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js := nodes[0].JetStream()
	raw, err := js.Stream(ctx, "RTBUS_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	m, err := raw.GetLastMsgForSubject(ctx, "rtbus.ev.ins."+r.ID)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, m.Subject, m.Data, jetstream.WithMsgID(r.ID))
	if err != nil || !ack.Duplicate || ack.Sequence != r.Seq {
		t.Fatalf("republish: %+v, %v; want a duplicate of %d", ack, err, r.Seq)
	}
	// Beyond the window (a plain publish without Msg-Id): stored, but the index drops it.
	ack, err = js.Publish(ctx, m.Subject, m.Data)
	if err != nil || ack.Duplicate {
		t.Fatalf("publish: %+v, %v", ack, err)
	}
	later := e.insert(ann, map[string]any{"event": "y", "collection_id": "c", "data": 2})
	var coll struct{ Events []record }
	e.expect(e.do("GET", "/collections/c", ann.bearer(), nil), 200).json(t, &coll)
	if len(coll.Events) != 2 || coll.Events[0].ID != r.ID || coll.Events[0].Seq != r.Seq || coll.Events[1].ID != later.ID {
		t.Fatalf("collection: %+v", coll.Events)
	}
}

// A future event is published once, at its time, on every node's streams; one cancelled
// before is never published; a cancel after the firing is 409.
func TestClusterLogSchedules(t *testing.T) {
	es, _ := newLogCluster(t, 3)
	e1, e2, e3 := es[0], es[1], es[2]
	ann, bob, cat := e1.signup("ann", "acme"), e2.signup("bob", "acme"), e3.signup("cat", "acme")
	var clients []*tclient
	for _, tr := range streamTransports {
		clients = append(clients, mustOpen(t, tr, e1, "", ann.bearer(), nil), mustOpen(t, tr, e2, "", bob.bearer(), nil), mustOpen(t, tr, e3, "", cat.bearer(), nil))
	}
	at := time.Now().Add(3 * time.Second).Unix() // time enough to cancel one first, on a loaded machine
	fire := e1.insert(ann, map[string]any{"event": "later", "collection_id": "c", "data": "fire", "timestamp": at})
	drop := e2.insert(bob, map[string]any{"event": "later", "collection_id": "d", "data": "drop", "timestamp": at})
	if fire.Published || drop.Published {
		t.Fatalf("future events published at once: %+v %+v", fire, drop)
	}
	// Cancelled on node 3 (inserted on node 2): never published.
	var out struct{ Event record }
	e3.expect(e3.do("POST", "/cancel/"+drop.ID, cat.bearer(), nil), 200).json(t, &out)
	if !out.Event.Cancelled {
		t.Fatalf("cancel answered %+v", out.Event)
	}
	e1.expect(e1.do("POST", "/cancel/"+drop.ID, ann.bearer(), nil), 409)
	// Every stream gets the fired one, once.
	var fired string
	for i, c := range clients {
		m := c.next(t)
		if m.record(t).ID != fire.ID {
			t.Fatalf("client %d: %+v, want %s", i, m, fire.ID)
		}
		if fired == "" {
			fired = m.id
		} else if m.id != fired {
			t.Fatalf("client %d: id %s, another %s", i, m.id, fired)
		}
	}
	for _, c := range clients {
		c.quiet(t, 300*time.Millisecond)
	}
	// A cancel after the firing, on any node: 409 already published.
	for i, e := range es {
		u := []user{ann, bob, cat}[i]
		r := e.expect(e.do("POST", "/cancel/"+fire.ID, u.bearer(), nil), 409)
		if !strings.Contains(string(r.body), "already published") {
			t.Fatalf("node %d: %s", i+1, r.body)
		}
	}
	var mine struct{ Events []record }
	e2.expect(e2.do("GET", "/user_events", bob.bearer(), nil), 200).json(t, &mine)
	if len(mine.Events) != 1 || !mine.Events[0].Cancelled || mine.Events[0].Published {
		t.Fatalf("bob's events: %+v", mine.Events)
	}
}

// A node whose index is deleted rebuilds it from the stream at start: the same events, the
// same cursors; a cursor of another epoch gets resync and the full state; a malformed one 400.
func TestClusterLogRebuildAndCursors(t *testing.T) {
	es, nodes := newLogCluster(t, 1)
	e := es[0]
	ann := e.signup("ann", "acme")
	var recs []record
	for i := 0; i < 4; i++ {
		recs = append(recs, e.insert(ann, map[string]any{"event": "n", "collection_id": strconv.Itoa(i % 2), "data": i}))
	}
	c := mustOpen(t, streamTransports[0], e, "", ann.bearer(), nil)
	c.next(t)
	state := c.next(t) // the state: (n,0) then (n,1), the cursor on the last
	c.close()
	if cursorSeq(t, state.id) != recs[3].Seq {
		t.Fatalf("state cursor %s, want seq %d", state.id, recs[3].Seq)
	}
	cursor := strings.Split(state.id, ".")[0] + "." + strconv.FormatUint(recs[1].Seq, 10)

	// Delete the index (the users go with it on a node whose accounts are local: sign up
	// again) and restart.
	e.stop()
	if err := os.RemoveAll(filepath.Join(e.dir, "db")); err != nil {
		t.Fatal(err)
	}
	e.start()
	var ann2 user
	if r := e.do("POST", "/login", "", map[string]string{"username": "ann", "password": "pw-ann"}); r.code == 200 {
		ann2 = ann
		ann2.token = r.field(t, "jwt")
	} else {
		ann2 = e.signup("ann", "acme")
	}
	for _, tr := range streamTransports {
		c := mustOpen(t, tr, e, "", ann2.bearer(), map[string]string{"Last-Event-ID": cursor})
		for _, want := range recs[2:] {
			if m := c.next(t); m.record(t).ID != want.ID || cursorSeq(t, m.id) != want.Seq {
				t.Fatalf("%s after rebuild: %+v, want %s at %d", tr.name, m, want.ID, want.Seq)
			}
		}
		c.quiet(t, 200*time.Millisecond)
		c.close()

		// Another epoch, or a single node's plain number: resync, then the state.
		for _, other := range []string{"0123456789abcdef.2", "7"} {
			c = mustOpen(t, tr, e, "", ann2.bearer(), map[string]string{"Last-Event-ID": other})
			m := c.next(t)
			var body map[string]string
			if m.event != "resync" || json.Unmarshal([]byte(m.data), &body) != nil || body["last_event_id"] != other {
				t.Fatalf("%s cursor %s: %+v, want resync", tr.name, other, m)
			}
			c.next(t)
			if m := c.next(t); m.record(t).ID != recs[3].ID || cursorSeq(t, m.id) != recs[3].Seq {
				t.Fatalf("%s state after resync: %+v", tr.name, m)
			}
			c.close()
		}
		for _, bad := range []string{"x", "abc.", ".5", "ABC.5", "ab.-1", "ab.5.6", "ab.5x"} {
			refused(t, tr, e, "?last_event_id="+bad, ann2.bearer(), nil, 400)
		}
	}

	// The stream trimmed before recs[2] (an operator's purge) and the index rebuilt again: a
	// cursor that still has its next record resumes; an older one gets resync and the state.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := nodes[0].JetStream().Stream(ctx, "RTBUS_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(recs[2].Seq)); err != nil {
		t.Fatal(err)
	}
	e.stop()
	if err := os.RemoveAll(filepath.Join(e.dir, "db")); err != nil {
		t.Fatal(err)
	}
	e.start()
	if r := e.do("POST", "/login", "", map[string]string{"username": "ann", "password": "pw-ann"}); r.code == 200 {
		ann2.token = r.field(t, "jwt")
	} else {
		ann2 = e.signup("ann", "acme")
	}
	c = mustOpen(t, streamTransports[2], e, "", ann2.bearer(), map[string]string{"Last-Event-ID": cursor})
	for _, want := range recs[2:] {
		if m := c.next(t); m.record(t).ID != want.ID {
			t.Fatalf("resumed on a trimmed log: %+v, want %s", m, want.ID)
		}
	}
	c.close()
	older := strings.Split(cursor, ".")[0] + "." + strconv.FormatUint(recs[0].Seq, 10)
	c = mustOpen(t, streamTransports[0], e, "", ann2.bearer(), map[string]string{"Last-Event-ID": older})
	if m := c.next(t); m.event != "resync" || !strings.Contains(m.data, "older") {
		t.Fatalf("a cursor older than the log: %+v, want resync", m)
	}
}

// Two of three nodes down: an insert fails fast with 503; reads go on.
func TestClusterLogNoQuorum(t *testing.T) {
	es, nodes := newLogCluster(t, 3)
	e1 := es[0]
	ann := e1.signup("ann", "acme")
	e1.insert(ann, map[string]any{"event": "x", "collection_id": "c", "data": 1})
	es[1].stop()
	es[2].stop()
	nodes[1].Close()
	nodes[2].Close()
	start := time.Now()
	r := e1.expect(e1.do("POST", "/insert", ann.bearer(), map[string]any{"event": "x", "collection_id": "c", "data": 2}), 503)
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("503 after %v", d)
	}
	if !strings.Contains(string(r.body), "unavailable") {
		t.Errorf("503 body %s", r.body)
	}
	var coll struct{ Events []record }
	e1.expect(e1.do("GET", "/collections/c", ann.bearer(), nil), 200).json(t, &coll)
	if len(coll.Events) != 1 {
		t.Fatalf("collection: %+v", coll.Events)
	}
}

// The stream's leader is killed at the second a schedule falls due: the event is published
// once on the other nodes' streams (fired by the old leader or by the new one, or by both and
// then dropped as a repeat by every index), and inserts go on through the two left.
func TestClusterLogLeaderKilledAtFire(t *testing.T) {
	es, nodes := newLogCluster(t, 3)
	users := make([]user, 3)
	for i, e := range es {
		users[i] = e.signup("u"+strconv.Itoa(i), "acme")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := nodes[0].JetStream().Stream(ctx, "RTBUS_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %+v, %v", info, err)
	}
	leader := -1
	for i, nd := range nodes {
		if nd.NodeName() == info.Cluster.Leader {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("leader %q is none of the nodes", info.Cluster.Leader)
	}
	other := (leader + 1) % 3
	var clients []*tclient
	for i, e := range es {
		if i != leader {
			clients = append(clients, mustOpen(t, streamTransports[0], e, "", users[i].bearer(), nil), mustOpen(t, streamTransports[2], e, "", users[i].bearer(), nil))
		}
	}
	at := time.Now().Add(3 * time.Second).Unix()
	ev := es[other].insert(users[other], map[string]any{"event": "due", "collection_id": "c", "data": 1, "timestamp": at})
	time.Sleep(time.Until(time.Unix(at, 0)))
	es[leader].stop()
	nodes[leader].Close()
	for i, c := range clients {
		m := nextMsgWithin(t, c, 20*time.Second)
		if m.record(t).ID != ev.ID {
			t.Fatalf("client %d: %+v, want %s", i, m, ev.ID)
		}
	}
	// Inserts go on, and the fired event came once: the next message is the next insert.
	next := es[other].insert(users[other], map[string]any{"event": "after", "collection_id": "c", "data": 2})
	for i, c := range clients {
		if m := nextMsgWithin(t, c, 10*time.Second); m.record(t).ID != next.ID {
			t.Fatalf("client %d after the failover: %+v, want %s", i, m, next.ID)
		}
	}
}

// nextMsgWithin is tclient.next with a longer bound (a leader election comes first).
func nextMsgWithin(t *testing.T, c *tclient, d time.Duration) sseMsg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
	}
	return sseMsg{}
}

// BenchmarkInsertCluster is BenchmarkInsert against node 1 of a 3-node cluster, with the
// stream open on node 2: each insert is acknowledged by a quorum of the stream and applied by
// node 1's index before it is answered. Compare with BenchmarkInsert in the same run.
func BenchmarkInsertCluster(b *testing.B) {
	es, _ := newLogCluster(b, 3)
	u := es[0].signup("ann", "acme")
	st := es[1].openStream("/sse", es[1].signup("bob", "acme").bearer(), nil)
	go func() {
		for range st.msgs {
		}
	}()
	postInserts(b, es[0], u)
}

// A node's bridge stopped while the others take inserts catches up from its checkpoint when
// it starts again (no rebuild): its reads have every event, with the same sequences, and a
// client resumes there with the cursor it had.
func TestClusterLogRestartCatchesUp(t *testing.T) {
	es, _ := newLogCluster(t, 3)
	e1, e3 := es[0], es[2]
	ann, cat := e1.signup("ann", "acme"), e3.signup("cat", "acme")
	first := e1.insert(ann, map[string]any{"event": "n", "collection_id": "c", "data": 0})
	c := mustOpen(t, streamTransports[0], e3, "", cat.bearer(), nil)
	cursor := c.next(t).id
	c.close()
	e3.stop()
	var missed []record
	for i := 1; i <= 3; i++ {
		missed = append(missed, e1.insert(ann, map[string]any{"event": "n", "collection_id": "c", "data": i}))
	}
	e3.start()
	// Started means caught up: the collection has everything at once.
	var coll struct{ Events []record }
	e3.expect(e3.do("GET", "/collections/c", cat.bearer(), nil), 200).json(t, &coll)
	if len(coll.Events) != 4 || coll.Events[0].ID != first.ID || coll.Events[3].Seq != missed[2].Seq {
		t.Fatalf("node 3's collection after its restart: %+v", coll.Events)
	}
	for _, tr := range streamTransports {
		c := mustOpen(t, tr, e3, "", cat.bearer(), map[string]string{"Last-Event-ID": cursor})
		for _, want := range missed {
			if m := c.next(t); m.record(t).ID != want.ID || cursorSeq(t, m.id) != want.Seq {
				t.Fatalf("%s resumed on the restarted node: %+v, want %s", tr.name, m, want.ID)
			}
		}
		c.quiet(t, 100*time.Millisecond)
		c.close()
	}
}
