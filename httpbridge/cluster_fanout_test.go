package httpbridge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/cluster/clustertest"
	"github.com/rtbus/rtbus/httpbridge"
)

// newCluster starts n in-process cluster nodes, each with its own bridge on its own
// listeners (one secret and admin token for all), and waits until every node's presence
// query is answered by all of them.
func newCluster(t *testing.T, n int) []*env {
	t.Helper()
	var es []*env
	for _, nd := range clustertest.Start(t, n) {
		es = append(es, newEnv(t, func(c *httpbridge.Config) { c.Cluster = nd; c.JWTSecret = "cluster-test-secret" }))
	}
	for _, e := range es {
		waitFor(t, "every node to answer presence", func() bool {
			return len(strings.Split(e.admin("GET", "/v1/connections", nil).hdr.Get("Rtbus-Nodes"), ", ")) == n
		})
	}
	return es
}

type presence struct {
	conns          []map[string]any
	nodes, missing string
}

func (e *env) who(query string) presence {
	e.t.Helper()
	r := e.expect(e.admin("GET", "/v1/connections"+query, nil), 200)
	var p presence
	r.json(e.t, &p.conns)
	p.nodes, p.missing = r.hdr.Get("Rtbus-Nodes"), r.hdr.Get("Rtbus-Nodes-Missing")
	return p
}

func (e *env) pushMsg(body any) int {
	e.t.Helper()
	var out struct{ Delivered int }
	e.expect(e.admin("POST", "/v1/messages", body), 202).json(e.t, &out)
	return out.Delivered
}

// A message pushed on node 1 reaches the tenant's streams on nodes 2 and 3 over every
// transport, once each, and no other tenant's; presence on node 1 lists every node's streams;
// kills sent to node 2 end streams on nodes 1 and 3 within a second; a node that stops
// answering delays presence by the deadline at most.
func TestClusterFanout(t *testing.T) {
	es := newCluster(t, 3)
	e1, e2, e3 := es[0], es[1], es[2]
	ann := e1.signup("ann", "acme")
	bob := e2.signup("bob", "acme")
	cat := e3.signup("cat", "acme")
	zed := e2.signup("zed", "zeta")

	var acme, zeta []*tclient
	for _, tr := range streamTransports {
		acme = append(acme, mustOpen(t, tr, e2, "", bob.bearer(), nil), mustOpen(t, tr, e3, "", cat.bearer(), nil))
		zeta = append(zeta, mustOpen(t, tr, e2, "", zed.bearer(), nil))
	}
	annSSE := mustOpen(t, streamTransports[0], e1, "", ann.bearer(), nil)
	annWS := mustOpen(t, streamTransports[1], e1, "", ann.bearer(), nil)

	t.Run("push", func(t *testing.T) {
		if n := e1.pushMsg(`{"tenant_id":"acme","event":"hello","data":{"x":"<&>"}}`); n != 8 {
			t.Fatalf("delivered %d, want 8 (6 on nodes 2 and 3, 2 on node 1)", n)
		}
		for _, c := range append(acme, annSSE, annWS) {
			if m := c.next(t); m.event != "hello" || m.data != `{"x":"<&>"}` || m.id != "" {
				t.Fatalf("got %+v", m)
			}
		}
		// Once each: the next message is the next push, not a copy of the first. And zeta
		// got neither.
		e3.pushMsg(map[string]any{"tenant_id": "acme", "event": "second", "data": 2})
		e1.pushMsg(map[string]any{"tenant_id": "zeta", "event": "zeta-only", "data": 3})
		for _, c := range append(acme, annSSE, annWS) {
			if m := c.next(t); m.event != "second" {
				t.Fatalf("got %+v, want second", m)
			}
		}
		for _, c := range zeta {
			if m := c.next(t); m.event != "zeta-only" {
				t.Fatalf("zeta got %+v", m)
			}
		}
		// To one user, from node 2: that user's streams get it.
		e2.pushMsg(map[string]any{"tenant_id": "acme", "user": "bob", "event": "to-bob", "data": 4})
		for i, c := range acme {
			if i%2 == 0 { // bob's
				if m := c.next(t); m.event != "to-bob" {
					t.Fatalf("bob got %+v", m)
				}
			}
		}
		// A bus client's push on node 3 (uncounted) reaches every node's streams, once (the
		// bus hands it to the bridge asynchronously: it may come after the next push).
		push(t, e3, "rtbus/http/acme/push", `{"event":"from-bus","data":5}`)
		e1.pushMsg(map[string]any{"tenant_id": "acme", "event": "marker", "data": 6})
		for _, c := range append(acme, annSSE, annWS) {
			a, b := c.next(t).event, c.next(t).event
			if !(a == "from-bus" && b == "marker" || a == "marker" && b == "from-bus") {
				t.Fatalf("got %s and %s, want from-bus and marker", a, b)
			}
		}
		e2.pushMsg(map[string]any{"tenant_id": "acme", "event": "end", "data": 7})
		for _, c := range append(acme, annSSE, annWS) {
			if m := c.next(t); m.event != "end" {
				t.Fatalf("got %+v, want end", m)
			}
		}
	})

	t.Run("presence", func(t *testing.T) {
		p := e1.who("")
		if p.nodes != "n1, n2, n3" || p.missing != "" || len(p.conns) != 11 {
			t.Fatalf("presence on node 1: nodes %q, missing %q, %d streams", p.nodes, p.missing, len(p.conns))
		}
		p = e1.who("?tenant_id=acme")
		count := map[string]int{}
		for _, c := range p.conns {
			count[c["node"].(string)+" "+c["username"].(string)+" "+c["transport"].(string)]++
		}
		for _, want := range []string{"n1 ann sse", "n1 ann ws", "n2 bob sse", "n2 bob ws", "n2 bob poll", "n3 cat sse", "n3 cat ws", "n3 cat poll"} {
			if count[want] != 1 {
				t.Fatalf("acme on node 1: %v, want one %q", count, want)
			}
		}
		if len(p.conns) != 8 {
			t.Fatalf("acme: %d streams", len(p.conns))
		}
	})

	t.Run("kill", func(t *testing.T) {
		// Sessions of users of nodes 1 and 3, killed through node 2's internal API.
		start := time.Now()
		for _, tok := range []string{ann.token, cat.token} {
			e2.expect(e2.admin("POST", "/v1/session-blacklist", map[string]any{"session_id": jti(t, tok), "validity_seconds": 60}), 201)
		}
		deadline := time.Second
		for _, c := range []*tclient{annSSE, annWS, acme[1], acme[3], acme[5]} {
			select {
			case <-c.done:
			case <-time.After(deadline - time.Since(start)):
				t.Fatalf("a killed stream still open after %v", time.Since(start))
			}
		}
		t.Logf("5 streams on nodes 1 and 3 killed from node 2 in %v", time.Since(start))
		if m := annSSE.ended(t); len(m) == 0 || m[len(m)-1].event != "session_killed" {
			t.Fatalf("ann's SSE stream ended with %v", m)
		}
		if code := annWS.code.Load(); code != 4001 {
			t.Fatalf("ann's WebSocket closed with %d", code)
		}
		waitFor(t, "node 3's long poll to end", func() bool { return acme[5].status.Load() == 401 })
		waitFor(t, "the killed streams to leave presence", func() bool { return len(e2.who("?tenant_id=acme").conns) == 3 })
	})

	t.Run("silent node", func(t *testing.T) {
		// Node 3 stops answering (its NATS connection is gone; it said no bye): presence on
		// node 1 waits for it no longer than the deadline, and says so.
		e3.cfg.Cluster.Conn().Close()
		start := time.Now()
		p := e1.who("")
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("presence took %v", took)
		}
		if p.nodes != "n1, n2" || p.missing != "n3" {
			t.Fatalf("nodes %q, missing %q", p.nodes, p.missing)
		}
		start = time.Now()
		if n := e1.pushMsg(map[string]any{"tenant_id": "acme", "event": "x", "data": 1}); n != 3 || time.Since(start) > 2*time.Second {
			t.Fatalf("push with node 3 silent: delivered %d (want bob's 3) in %v", n, time.Since(start))
		}
	})
}

// A user with devices on three nodes over three transports: a message pushed to the user on
// one node reaches each device once, and no one else; presence on any node lists the three;
// revoking the user on one node ends them all within a second.
func TestClusterUserFanout(t *testing.T) {
	es := newCluster(t, 3)
	e1, e2, e3 := es[0], es[1], es[2]
	ann := e1.signup("ann", "acme")
	bob := e1.signup("bob", "acme")
	for _, e := range es[1:] {
		waitFor(t, "ann to be known on every node", func() bool {
			return e.do("POST", "/get_user", "", map[string]string{"admin_token": adminToken, "username": "ann"}).code == 200
		})
	}
	ann3 := e3.login("ann") // another device, another session
	devices := []*tclient{
		mustOpen(t, streamTransports[0], e1, "", ann.bearer(), nil),
		mustOpen(t, streamTransports[1], e3, "", ann3.bearer(), nil),
		mustOpen(t, streamTransports[2], e2, "", ann.bearer(), nil),
	}
	bobs := mustOpen(t, streamTransports[1], e2, "", bob.bearer(), nil)

	if n := e2.pushMsg(map[string]any{"tenant_id": "acme", "user": "ann", "event": "for-ann", "data": 1}); n != 3 {
		t.Fatalf("delivered %d, want ann's 3", n)
	}
	e3.pushMsg(map[string]any{"tenant_id": "acme", "event": "all", "data": 2})
	for _, c := range devices {
		for _, want := range []string{"for-ann", "all"} { // once each
			if m := c.next(t); m.event != want {
				t.Fatalf("ann got %+v, want %s", m, want)
			}
		}
	}
	if m := bobs.next(t); m.event != "all" {
		t.Fatalf("bob got %+v", m)
	}

	p := e1.who("?tenant_id=acme&user=ann")
	nodes := map[string]string{}
	for _, c := range p.conns {
		nodes[c["node"].(string)] = c["transport"].(string)
	}
	if len(p.conns) != 3 || nodes["n1"] != "sse" || nodes["n2"] != "poll" || nodes["n3"] != "ws" {
		t.Fatalf("ann's streams from node 1: %v", p.conns)
	}

	start := time.Now()
	e2.expect(e2.do("POST", "/revoke_user", "", map[string]string{"admin_token": adminToken, "username": "ann"}), 200)
	for _, c := range devices {
		select {
		case <-c.done:
		case <-time.After(time.Second - time.Since(start)):
			t.Fatalf("a stream of the revoked user still open after %v", time.Since(start))
		}
	}
	t.Logf("ann's 3 streams on 3 nodes ended %v after her revocation on node 2", time.Since(start))
	e1.pushMsg(map[string]any{"tenant_id": "acme", "event": "after", "data": 3})
	if m := bobs.next(t); m.event != "after" {
		t.Fatalf("bob got %+v", m)
	}
}
