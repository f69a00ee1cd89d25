package natsfan_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rtbus/rtbus/cluster"
	"github.com/rtbus/rtbus/cluster/clustertest"
	"github.com/rtbus/rtbus/httpbridge/internal/natsfan"
	"github.com/rtbus/rtbus/httpbridge/internal/sse"
	"github.com/rtbus/rtbus/internal/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// deadline is the nodes' gathering deadline: long, so that a query that waited for it is told
// apart from one that did not, however loaded the machine.
const deadline = 2 * time.Second

// node is one cluster node: a hub served over HTTP (SSE on /sse, WebSocket on /ws, the
// stream's tenant, user and session from the query) and its fan-out.
type node struct {
	c   *cluster.Node
	hub *sse.Hub
	fan *natsfan.Fan
	url string
}

func startNodes(t testing.TB, n int) []*node {
	t.Helper()
	var out []*node
	for _, c := range clustertest.Start(t, n) {
		nd := &node{c: c, hub: sse.NewHub(sse.HubOptions{})}
		fan, err := natsfan.New(c.Conn(), nd.hub, natsfan.Options{Node: c.NodeName(), Deadline: deadline, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		nd.fan = fan
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			opts := sse.StreamOptions{Tenant: q.Get("tenant"), User: q.Get("user"), Username: q.Get("user"), Session: q.Get("session"), Remote: r.RemoteAddr, Detach: true}
			var err error
			if r.URL.Path == "/ws" {
				err = nd.hub.ServeWS(r.Context(), w, r, opts)
			} else {
				err = nd.hub.Serve(r.Context(), w, opts)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
		}))
		nd.url = hs.URL
		// Stopped in this order: streams end, then the fan-out says bye, then the node.
		t.Cleanup(func() { hs.Close(); fan.Close(); nd.hub.Close() })
		out = append(out, nd)
	}
	for _, nd := range out {
		waitFor(t, "every node to know the others", func() bool { return len(nd.fan.Peers()) == n-1 })
	}
	return out
}

// msg is one message a test client read.
type msg struct{ event, data string }

type client struct {
	msgs chan msg
	done chan struct{} // closed when the stream ends
	code int           // WebSocket: the close code, once done
}

// open opens a stream on nd: transport "sse" or "ws", query "tenant=…&user=…&session=…".
// It returns once the stream is registered with the hub.
func open(t *testing.T, nd *node, transport, query string) *client {
	t.Helper()
	before := nd.hub.Streams()
	c := &client{msgs: make(chan msg, 100), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	switch transport {
	case "sse":
		req, _ := http.NewRequestWithContext(ctx, "GET", nd.url+"/sse?"+query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("sse %s: %v %v", query, resp, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		go func() {
			defer close(c.done)
			sc := bufio.NewScanner(resp.Body)
			var m msg
			for sc.Scan() {
				k, v, _ := strings.Cut(sc.Text(), ":")
				switch k {
				case "event":
					m.event = v
				case "data":
					m.data = v
				case "":
					if m.event != "" {
						c.msgs <- m
					}
					m = msg{}
				}
			}
		}()
	case "ws":
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(nd.url, "http")+"/ws?"+query, nil)
		if err != nil {
			t.Fatalf("ws %s: %v", query, err)
		}
		t.Cleanup(func() { conn.CloseNow() })
		go func() {
			defer close(c.done)
			for {
				_, b, err := conn.Read(ctx)
				if err != nil {
					c.code = int(websocket.CloseStatus(err))
					return
				}
				var j struct {
					Event string
					Data  json.RawMessage
				}
				if json.Unmarshal(b, &j) != nil {
					t.Errorf("ws frame %q", b)
					return
				}
				c.msgs <- msg{j.Event, string(j.Data)}
			}
		}()
	}
	waitFor(t, "the stream to register", func() bool { return nd.hub.Streams() > before })
	return c
}

func (c *client) next(t *testing.T) msg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-c.done:
		t.Fatal("stream ended")
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5 s")
	}
	return msg{}
}

// nextIs checks the next message. To check that something did not arrive, a test pushes a
// marker after it and expects the marker next: a wait for delivery, not for a time.
func (c *client) nextIs(t *testing.T, want msg) {
	t.Helper()
	if m := c.next(t); m != want {
		t.Fatalf("got %v, want %v", m, want)
	}
}

// killedWithin checks that the stream ends within d, told why: an SSE stream's last message
// is the kill, a WebSocket is closed with 4001.
func (c *client) killedWithin(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	var last msg
	for {
		select {
		case m := <-c.msgs:
			last = m
			continue
		case <-c.done:
		case <-deadline:
			t.Fatalf("stream still open after %v", d)
		}
		break
	}
	for {
		select {
		case m := <-c.msgs:
			last = m
			continue
		default:
		}
		break
	}
	if last.event != sse.KillEvent && c.code != sse.CloseSessionKilled {
		t.Fatalf("last message %v, close code %d: want %s", last, c.code, sse.KillEvent)
	}
}

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

func push(tenant, user, event, data string) sse.Message {
	return sse.Message{Tenant: tenant, User: user, Event: event, Record: []byte(data), Data: []byte(data)}
}

func TestFanOut(t *testing.T) {
	ns := startNodes(t, 3)
	n1, n2, n3 := ns[0], ns[1], ns[2]

	// ann has two devices, on node 1 (SSE) and node 3 (WebSocket); bob one on node 2; zed
	// belongs to another tenant, on node 2.
	ann1 := open(t, n1, "sse", "tenant=acme&user=ann&session=s-ann1")
	ann3 := open(t, n3, "ws", "tenant=acme&user=ann&session=s-ann3")
	bob2 := open(t, n2, "ws", "tenant=acme&user=bob&session=s-bob")
	zed2 := open(t, n2, "sse", "tenant=zeta&user=zed&session=s-zed")
	all := []*client{ann1, ann3, bob2}

	t.Run("tenant", func(t *testing.T) {
		// The data reaches every node byte for byte (no escaping of <, >, &).
		if n := n1.fan.Push(push("acme", "", "hello", `{"x":"<a&b>"}`), true); n != 3 {
			t.Fatalf("delivered %d, want 3", n)
		}
		for _, c := range all {
			c.nextIs(t, msg{"hello", `{"x":"<a&b>"}`})
		}
		n2.fan.Push(push("zeta", "", "z", `2`), false)
		zed2.nextIs(t, msg{"z", "2"}) // acme's message never reached zeta
	})

	t.Run("user", func(t *testing.T) {
		if n := n2.fan.Push(push("acme", "ann", "for-ann", `"hi"`), true); n != 2 {
			t.Fatalf("delivered %d, want 2", n)
		}
		ann1.nextIs(t, msg{"for-ann", `"hi"`})
		ann3.nextIs(t, msg{"for-ann", `"hi"`})
		// bob got nothing: the next thing he gets is the next tenant message, and ann gets it
		// once (not a second copy from an echo).
		n3.fan.Push(push("acme", "", "after", `0`), false)
		for _, c := range all {
			c.nextIs(t, msg{"after", "0"})
		}
		// A user of the same id in another tenant is another user.
		if n := n1.fan.Push(push("zeta", "ann", "x", `0`), true); n != 0 {
			t.Fatalf("delivered %d to zeta's ann, want 0", n)
		}
	})

	t.Run("presence", func(t *testing.T) {
		p := n1.fan.Conns("", "")
		if !slices.Equal(p.Nodes, []string{"n1", "n2", "n3"}) || len(p.Missing) != 0 || len(p.Conns) != 4 {
			t.Fatalf("presence %+v", p)
		}
		p = n2.fan.Conns("acme", "ann")
		var where []string
		for _, c := range p.Conns {
			where = append(where, c.Node+"/"+c.Transport+"/"+c.Session)
		}
		slices.Sort(where)
		if !slices.Equal(where, []string{"n1/sse/s-ann1", "n3/ws/s-ann3"}) {
			t.Fatalf("ann's streams %v", where)
		}
	})

	t.Run("kill", func(t *testing.T) {
		start := time.Now()
		n2.fan.KillSession("s-ann1")
		ann1.killedWithin(t, time.Second)
		n1.fan.KillUser("ann")
		ann3.killedWithin(t, time.Second)
		t.Logf("two kills across nodes in %v", time.Since(start))
		n3.fan.Push(push("acme", "", "still", `1`), false)
		bob2.nextIs(t, msg{"still", "1"})
		if p := n3.fan.Conns("acme", ""); len(p.Conns) != 1 || p.Conns[0].User != "bob" {
			t.Fatalf("after the kills: %+v", p)
		}
	})

	t.Run("silent node", func(t *testing.T) {
		// Node 3's NATS connection goes away without a bye: node 1 still waits for it until
		// it is forgotten, but never past the deadline.
		n3.c.Conn().Close()
		start := time.Now()
		p := n1.fan.Conns("", "")
		took := time.Since(start)
		if took > deadline+2*time.Second {
			t.Fatalf("presence took %v", took)
		}
		if !slices.Equal(p.Nodes, []string{"n1", "n2"}) || !slices.Equal(p.Missing, []string{"n3"}) {
			t.Fatalf("presence after node 3 went: %+v (in %v)", p, took)
		}
		// Node 3 itself, cut off, answers at once with its own streams.
		start = time.Now()
		if p := n3.fan.Conns("", ""); !slices.Equal(p.Nodes, []string{"n3"}) || !slices.Equal(p.Missing, []string{"n1", "n2"}) || time.Since(start) > deadline/2 {
			t.Fatalf("presence on the cut-off node: %+v in %v", p, time.Since(start))
		}
		if n := n1.fan.Push(push("acme", "", "x", `1`), true); n != 1 {
			t.Fatalf("delivered %d, want bob's 1", n)
		}
		waitFor(t, "node 3 to be forgotten", func() bool { return len(n1.fan.Peers()) == 1 })
		start = time.Now()
		if p := n1.fan.Conns("", ""); len(p.Missing) != 0 || time.Since(start) > deadline/2 {
			t.Fatalf("presence once node 3 is forgotten: %+v in %v", p, time.Since(start))
		}
	})
}

func TestBye(t *testing.T) {
	ns := startNodes(t, 2)
	ns[1].fan.Close()
	waitFor(t, "the bye", func() bool { return len(ns[0].fan.Peers()) == 0 })
	start := time.Now()
	p := ns[0].fan.Conns("", "")
	if took := time.Since(start); took > deadline/2 || len(p.Missing) != 0 {
		t.Fatalf("presence with no peer took %v: %+v", took, p)
	}
}
