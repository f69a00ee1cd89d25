package e2e

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/rtbus/rtbus/cluster/clustertest"
	"github.com/rtbus/rtbus/internal/rtbusdproc"
)

// Helpers of the schedule, cancel and partition fault tests.

// settle reads f's stream for d more, failing at once on an event delivered twice: what a
// test does to see that no repeat comes after the events it waited for.
func (f *follower) settle(d time.Duration) {
	f.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-f.st.msgs:
			f.take(m)
			if len(f.dups) > 0 {
				f.t.Fatalf("%s follower on %s: delivered twice: %v", f.tr.name, f.on.name, f.dups)
			}
		case <-deadline:
			return
		}
	}
}

// userEvents returns what n's index holds of the events u inserted, by id.
func userEvents(t testing.TB, n *node, u user) map[string]record {
	t.Helper()
	var out struct{ Events []record }
	expect(t, do(t, n, "GET", "/user_events", u.bearer(), nil), 200).json(t, &out)
	m := map[string]record{}
	for _, e := range out.Events {
		if _, dup := m[e.ID]; dup {
			t.Fatalf("user_events on %s lists %s twice", n.name, e.ID)
		}
		m[e.ID] = e
	}
	return m
}

// replay opens an SSE stream on n from cursor and returns the messages it replays until
// count of them have come and the stream then stays quiet for quiet; it fails on more.
func replay(t testing.TB, n *node, u user, cursor string, count int, bound, quiet time.Duration) []msg {
	t.Helper()
	st := mustOpen(t, transports[0], n, "", u.token, cursor)
	defer st.close()
	var got []msg
	for len(got) < count {
		got = append(got, st.next(t, bound))
	}
	select {
	case m := <-st.msgs:
		t.Fatalf("replay on %s from %s: %d messages wanted, then %+v", n.name, cursor, count, m)
	case <-time.After(quiet):
	}
	return got
}

// peersOf returns the peers n's embedded server is routed to, as its internal API reports
// them; false if n does not answer.
func (s *system) peersOf(n *node) ([]string, bool) {
	st, err := rtbusdproc.ClusterStatus(httpClient, n.iurl, s.adminToken)
	if err != nil {
		return nil, false
	}
	var out []string
	for _, r := range st.Routes {
		out = append(out, r.Node)
	}
	sort.Strings(out)
	return out, true
}

// replayAll opens an SSE stream on n from cursor and returns every message it replays, up to
// the first pause of quiet; it fails if that takes more than bound.
func replayAll(t testing.TB, n *node, u user, cursor string, bound, quiet time.Duration) []msg {
	t.Helper()
	st := mustOpen(t, transports[0], n, "", u.token, cursor)
	defer st.close()
	var got []msg
	deadline := time.After(bound)
	for {
		select {
		case m := <-st.msgs:
			got = append(got, m)
		case <-st.done:
			t.Fatalf("replay on %s from %s: the stream ended after %d messages", n.name, cursor, len(got))
		case <-time.After(quiet):
			return got
		case <-deadline:
			t.Fatalf("replay on %s from %s: still replaying after %v (%d messages)", n.name, cursor, bound, len(got))
		}
	}
}

// startClusterBehindProxies is startClusterVia with a clustertest proxy on every route link:
// proxies[i][j] carries node i's route connections to node j. Each node's route listener is
// on its own loopback address (127.0.0.2, .3, ...), never 127.0.0.1: NATS gossips a server's
// route port with the address a peer sees its connection come from (here the proxies',
// 127.0.0.1), and a server that hears of a peer before its configured route to that peer is
// up dials that address directly (an "implicit" route), past the proxy, so that Cut would
// not separate them. On 127.0.0.1 nothing listens on those ports: such dials are refused.
func startClusterBehindProxies(t testing.TB, n int, extra ...string) (*system, [][]*clustertest.Proxy) {
	t.Helper()
	s := &system{t: t, adminToken: randomHex(16), cluster: true}
	ports := freePorts(t, 3*n)
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("127.0.0.%d:%d", i+2, ports[2*n+i])
	}
	proxies := make([][]*clustertest.Proxy, n)
	for i := range n {
		proxies[i] = make([]*clustertest.Proxy, n)
		var peers []string
		for j, r := range routes {
			if j != i {
				proxies[i][j] = clustertest.NewProxy(t, r)
				peers = append(peers, proxies[i][j].Addr())
			}
		}
		s.nodes = append(s.nodes, s.newNode(fmt.Sprintf("n%d", i+1), ports[i], ports[n+i], routes[i], peers, extra))
	}
	s.startAll()
	return s, proxies
}
