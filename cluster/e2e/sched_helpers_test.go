package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/cluster/clustertest"
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
	req, _ := http.NewRequest("GET", n.iurl+"/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer "+s.adminToken)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	var st struct{ Routes []struct{ Node string } }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&st) != nil {
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

// pacedWriter inserts events with a pause between inserts, round robin over some nodes, and
// records the ids of those acknowledged: hundreds of events in a test of seconds, not tens of
// thousands.
type pacedWriter struct {
	mu    sync.Mutex
	acked []string
	last  string // the last failure
	stop  chan struct{}
	done  chan struct{}
}

func startPacedWriter(t testing.TB, u user, collection string, nodes []*node, pause time.Duration) *pacedWriter {
	w := &pacedWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(pause):
			}
			n := nodes[i%len(nodes)]
			r := send(n, "POST", "/insert", u.bearer(), map[string]any{"event": "w", "data": i, "collection_id": collection})
			var out struct{ Event record }
			w.mu.Lock()
			if r.err == nil && r.code == 200 && json.Unmarshal(r.body, &out) == nil && out.Event.ID != "" {
				w.acked = append(w.acked, out.Event.ID)
			} else {
				w.last = fmt.Sprintf("%s: %d %s %v", n.name, r.code, r.body, r.err)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *pacedWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcks waits until n more inserts than now are acknowledged.
func (w *pacedWriter) waitAcks(t testing.TB, n int, bound time.Duration, what string) {
	t.Helper()
	want := w.count() + n
	eventually(t, bound, fmt.Sprintf("%d acknowledged inserts %s", n, what), func() bool { return w.count() >= want })
}

func (w *pacedWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// ids stops the writer and returns the acknowledged event ids, in acknowledgement order.
func (w *pacedWriter) ids() []string {
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
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
	for _, nd := range s.nodes {
		nd.start()
	}
	for _, nd := range s.nodes {
		nd.waitReady(90 * time.Second)
	}
	s.warmUp()
	return s, proxies
}
