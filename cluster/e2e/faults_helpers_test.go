package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/internal/rtbusdproc"
)

// eventStream is the JetStream stream that holds the event log.
const eventStream = "RTBUS_EVENTS"

// streamLeader returns the node that leads the event log's stream, as a running node's
// internal API (GET /v1/cluster) reports it.
func (s *system) streamLeader(t testing.TB) *node {
	t.Helper()
	var leader *node
	eventually(t, 30*time.Second, "a leader of "+eventStream, func() bool {
		for _, n := range s.nodes {
			if !n.running() {
				continue
			}
			st, err := rtbusdproc.ClusterStatus(httpClient, n.iurl, s.adminToken)
			if err != nil {
				continue
			}
			name := st.StreamLeader(eventStream)
			for _, m := range s.nodes {
				if name != "" && name == m.name && m.running() {
					leader = m
					return true
				}
			}
		}
		return false
	})
	return leader
}

// others returns the nodes but n.
func (s *system) others(n *node) []*node {
	var out []*node
	for _, m := range s.nodes {
		if m != n {
			out = append(out, m)
		}
	}
	return out
}

// writer inserts events round robin over some nodes, as clients that try another node when
// one fails, and records what was acknowledged. With a pause between inserts, a test of
// seconds makes hundreds of events, not tens of thousands.
type writer struct {
	mu    sync.Mutex
	acked []string          // event ids, in acknowledgement order
	last  map[string]string // node name: its last failure

	stop chan struct{}
	done chan struct{}
}

// startWriter starts a writer that waits pause before each insert (0: none).
func startWriter(t testing.TB, u user, collection string, nodes []*node, pause time.Duration) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{}), last: map[string]string{}}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			if pause > 0 {
				select {
				case <-w.stop:
					return
				case <-time.After(pause):
				}
			} else {
				select {
				case <-w.stop:
					return
				default:
				}
			}
			n := nodes[i%len(nodes)]
			r := send(n, "POST", "/insert", u.bearer(), map[string]any{"event": "w", "data": i, "collection_id": collection})
			var out struct{ Event record }
			w.mu.Lock()
			if r.err == nil && r.code == 200 && json.Unmarshal(r.body, &out) == nil && out.Event.ID != "" {
				w.acked = append(w.acked, out.Event.ID)
			} else {
				w.last[n.name] = fmt.Sprintf("%s %d %s %v", time.Now().Format("15:04:05.000"), r.code, bytes.TrimSpace(r.body), r.err)
			}
			w.mu.Unlock()
			if r.err != nil && pause == 0 { // a node down: do not spin on refused connections
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(w.halt)
	return w
}

// count returns how many inserts were acknowledged so far.
func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcks waits until n more inserts than now are acknowledged.
func (w *writer) waitAcks(t testing.TB, n int, bound time.Duration, what string) {
	t.Helper()
	want := w.count() + n
	deadline := time.Now().Add(bound)
	for w.count() < want {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %d acknowledged inserts %s; last failures: %s", bound, n, what, w.lastFailure())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *writer) lastFailure() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for n, f := range w.last {
		out = append(out, n+": "+f)
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// ids stops the writer and returns the acknowledged event ids.
func (w *writer) ids() []string {
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
}

// follower is a front end following a tenant's stream: it counts each event it is delivered
// and, when its node goes, resumes on another node from the last cursor it had.
type follower struct {
	t    testing.TB
	tr   transport
	u    user
	on   *node
	st   *stream
	seen map[string]int // event id: deliveries
	dups []string
}

// follow opens a stream on n from the tenant's state; open followers before the events they
// count, so that every message is a publication.
func follow(t testing.TB, tr transport, n *node, u user) *follower {
	t.Helper()
	return &follower{t: t, tr: tr, u: u, on: n, st: mustOpen(t, tr, n, "", u.token, ""), seen: map[string]int{}}
}

func (f *follower) take(m msg) {
	f.t.Helper()
	if m.event != "w" && m.event != "alarm" {
		f.t.Fatalf("%s follower on %s: unexpected message %+v", f.tr.name, f.on.name, m)
	}
	id := m.record(f.t).ID
	f.seen[id]++
	if f.seen[id] == 2 {
		f.dups = append(f.dups, id)
	}
}

// drain takes the messages that have arrived so far.
func (f *follower) drain() {
	for {
		select {
		case m := <-f.st.msgs:
			f.take(m)
		default:
			return
		}
	}
}

// resume closes the stream (if still open) and reopens it on n from the last cursor.
func (f *follower) resume(n *node) {
	f.t.Helper()
	f.st.close()
	<-f.st.done
	f.drain()
	cursor := f.st.lastID()
	if cursor == "" {
		f.t.Fatalf("%s follower on %s: no cursor to resume from", f.tr.name, f.on.name)
	}
	f.on = n
	f.st = mustOpen(f.t, f.tr, n, "", f.u.token, cursor)
}

// await reads until every id of want has been delivered; it fails after bound with what is
// missing, and at once on an event delivered twice.
func (f *follower) await(want []string, bound time.Duration) {
	f.t.Helper()
	deadline := time.After(bound)
	missing := func() []string {
		var out []string
		for _, id := range want {
			if f.seen[id] == 0 {
				out = append(out, id)
			}
		}
		return out
	}
	for {
		f.drain()
		if len(f.dups) > 0 {
			f.t.Fatalf("%s follower on %s: delivered twice: %v", f.tr.name, f.on.name, f.dups)
		}
		miss := missing()
		if len(miss) == 0 {
			return
		}
		select {
		case m := <-f.st.msgs:
			f.take(m)
		case <-f.st.done:
			f.drain()
			if len(missing()) > 0 {
				f.t.Fatalf("%s follower on %s: stream ended with %d of %d events missing", f.tr.name, f.on.name, len(missing()), len(want))
			}
		case <-deadline:
			f.t.Fatalf("%s follower on %s: %d of %d events missing after %v: %s", f.tr.name, f.on.name, len(miss), len(want), bound, short(miss))
		}
	}
}

func short(ids []string) string {
	if len(ids) > 5 {
		return strings.Join(ids[:5], ",") + ",…"
	}
	return strings.Join(ids, ",")
}

// checkCollection checks that n's index has every id of want in collection col, each once
// (waiting for it to catch up, up to bound), and nothing published twice.
func checkCollection(t testing.TB, n *node, u user, col string, want []string, bound time.Duration) {
	t.Helper()
	var got map[string]int
	var last []string
	deadline := time.Now().Add(bound)
	for {
		var out struct{ Events []record }
		expect(t, do(t, n, "GET", "/collections/"+col, u.bearer(), nil), 200).json(t, &out)
		got = map[string]int{}
		for _, e := range out.Events {
			got[e.ID]++
			if got[e.ID] > 1 {
				t.Fatalf("collection %s on %s holds %s twice", col, n.name, e.ID)
			}
		}
		last = last[:0]
		for _, id := range want {
			if got[id] == 0 {
				last = append(last, id)
			}
		}
		if len(last) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(last)
			t.Fatalf("collection %s on %s lacks %d of %d acknowledged events after %v: %s", col, n.name, len(last), len(want), bound, short(last))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
