package sse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// tenantLog stands in for the store: publications get a per-tenant Seq, are appended to the
// log and handed to the hub in Seq order, one at a time (as store.Options.OnPublish does).
type tenantLog struct {
	hub *sse.Hub
	mu  sync.Mutex
	log map[string][]sse.Message
}

func (l *tenantLog) publish(tenant, event, data string) sse.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := sse.Message{
		Tenant: tenant,
		Seq:    uint64(len(l.log[tenant]) + 1),
		Event:  event,
		Data:   []byte(data),
	}
	m.Record = []byte(fmt.Sprintf(`{"event":%q,"seq":%d,"data":%s}`, event, m.Seq, data))
	l.log[tenant] = append(l.log[tenant], m)
	l.hub.Publish(m)
	return m
}

// since is a Backlog: everything of the tenant after seq.
func (l *tenantLog) since(tenant string, after uint64) func(func(sse.Message) error) (uint64, error) {
	return func(send func(sse.Message) error) (uint64, error) {
		l.mu.Lock()
		ms := l.log[tenant][min(int(after), len(l.log[tenant])):]
		l.mu.Unlock()
		last := after
		for _, m := range ms {
			if err := send(m); err != nil {
				return last, err
			}
			last = m.Seq
		}
		return last, nil
	}
}

type server struct {
	*httptest.Server
	detach bool
	hub    *sse.Hub
	log    *tenantLog
	errs   chan error // what each Serve returned
}

// newServer serves GET /?tenant=T&user=U&format=data&after=N&events=E,F (after: backlog from
// the log; events: a Filter).
// With detach, streams are served detached, and errs gets what Done reports (or Serve's
// error).
func newServer(t *testing.T, opts sse.HubOptions, m mode) *server {
	t.Helper()
	return newServerOn(t, opts, m, nil)
}

// newServerOn is newServer with the listener wrapped by wrap, if set.
func newServerOn(t *testing.T, opts sse.HubOptions, m mode, wrap func(net.Listener) net.Listener) *server {
	t.Helper()
	detach := m.detach
	h := sse.NewHub(opts)
	s := &server{detach: detach, hub: h, log: &tenantLog{hub: h, log: map[string][]sse.Message{}}, errs: make(chan error, 1000)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		o := sse.StreamOptions{Tenant: q.Get("tenant"), User: q.Get("user"), DataOnly: q.Get("format") == "data"}
		if ev := q.Get("events"); ev != "" {
			o.Filter = sse.NewFilter(strings.Split(ev, ","), nil)
		}
		if a := q.Get("after"); a != "" {
			n, _ := strconv.ParseUint(a, 10, 64)
			o.Backlog = s.log.since(o.Tenant, n)
		}
		if e := q.Get("expires"); e != "" {
			n, _ := strconv.ParseInt(e, 10, 64)
			o.Expires = time.Unix(0, n)
		}
		if detach {
			o.Detach = true
			o.Done = func(err error) { s.errs <- err }
			if err := h.Serve(r.Context(), w, o); err != nil {
				s.errs <- err
			}
			return
		}
		s.errs <- h.Serve(r.Context(), w, o)
	}))
	if wrap != nil {
		s.Listener = wrap(s.Listener)
	}
	s.Start()
	t.Cleanup(func() {
		s.hub.Close()
		s.Server.Close()
	})
	return s
}

type event struct {
	name, data, id, retry string
	raw                   string
}

type client struct {
	resp   *http.Response
	events chan event
	done   chan struct{} // closed when the stream ends
}

func (s *server) connect(t *testing.T, query string) *client {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/?"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c := &client{resp: resp, events: make(chan event, 100000), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		br := bufio.NewReader(resp.Body)
		var ev event
		var raw strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			raw.WriteString(line)
			line = strings.TrimSuffix(line, "\n")
			if line == "" {
				ev.raw = raw.String()
				raw.Reset()
				c.events <- ev
				ev = event{}
				continue
			}
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "event":
				ev.name = v
			case "data":
				ev.data = v
			case "id":
				ev.id = v
			case "retry":
				ev.retry = v
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return c
}

const wait = 10 * time.Second

// next returns the next event that is not a keep-alive.
func (c *client) next(t *testing.T) event {
	t.Helper()
	deadline := time.After(wait) // one for the whole wait: keep-alives must not extend it
	for {
		select {
		case ev := <-c.events:
			if ev.name != "keepalive" {
				return ev
			}
		case <-c.done:
			select {
			case ev := <-c.events:
				if ev.name != "keepalive" {
					return ev
				}
			default:
				t.Fatal("stream ended")
			}
		case <-deadline:
			t.Fatal("no event within", wait)
		}
	}
}

func (c *client) waitEnd(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(wait):
		t.Fatal("stream still open after", wait)
	}
}

// rawStream opens a stream of tenant a over a bare TCP connection, with a receive buffer of
// readBuf bytes if set, and waits until it is the server's only stream; the test reads it,
// or not, as it pleases.
func (s *server) rawStream(t *testing.T, readBuf int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if readBuf > 0 {
		conn.(*net.TCPConn).SetReadBuffer(readBuf)
	}
	if _, err := io.WriteString(conn, "GET /?tenant=a HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	s.waitStreams(t, 1)
	return conn
}

func (s *server) waitStreams(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for s.hub.Streams() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams, want %d", s.hub.Streams(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *server) serveErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(wait):
		t.Fatal("Serve did not return within", wait)
		return nil
	}
}

func TestHeadersAndRetryOnFirstMessageOnly(t *testing.T) {
	bothModes(t, testHeadersAndRetryOnFirstMessageOnly)
}

func testHeadersAndRetryOnFirstMessageOnly(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{Retry: 1500 * time.Millisecond}, m)
	c := s.connect(t, "tenant=a")
	for k, v := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := c.resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	s.waitStreams(t, 1)
	for i := 0; i < 3; i++ {
		s.log.publish("a", "ev", fmt.Sprintf(`{"i":%d,"u":"é:"}`, i))
	}
	want := []string{
		"event:ev\ndata:{\"event\":\"ev\",\"seq\":1,\"data\":{\"i\":0,\"u\":\"\\u00e9\\u003a\"}}\nid:1\nretry:1500\n\n",
		"event:ev\ndata:{\"event\":\"ev\",\"seq\":2,\"data\":{\"i\":1,\"u\":\"\\u00e9\\u003a\"}}\nid:2\n\n",
		"event:ev\ndata:{\"event\":\"ev\",\"seq\":3,\"data\":{\"i\":2,\"u\":\"\\u00e9\\u003a\"}}\nid:3\n\n",
	}
	for i, w := range want {
		if ev := c.next(t); ev.raw != w {
			t.Fatalf("message %d:\n%q\nwant\n%q", i, ev.raw, w)
		}
	}
}

func TestFormatData(t *testing.T) { bothModes(t, testFormatData) }

func testFormatData(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{}, m)
	c := s.connect(t, "tenant=a&format=data&after=0")
	s.log.publish("a", "before", `{"x":"a:b"}`) // may come by backlog or live: once either way
	s.waitStreams(t, 1)
	s.log.publish("a", "after", `[1,"☃"]`)
	if ev := c.next(t); ev.name != "before" || ev.data != `{"x":"a\u003ab"}` || ev.id != "1" {
		t.Fatalf("got %+v", ev)
	}
	if ev := c.next(t); ev.name != "after" || ev.data != `[1,"\u2603"]` || ev.id != "2" {
		t.Fatalf("got %+v", ev)
	}
}

// Streams connect while a publisher runs: each gets the backlog, then live messages, with
// nothing lost and nothing twice at the boundary.
func TestBacklogThenLiveNoLossNoDuplicate(t *testing.T) {
	bothModes(t, testBacklogThenLiveNoLossNoDuplicate)
}

func testBacklogThenLiveNoLossNoDuplicate(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{QueueSize: 100000}, m)
	const total, clients = 3000, 12
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 1; i <= total; i++ {
			s.log.publish("t", "n", strconv.Itoa(i))
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // let clients connect at varied points
			}
		}
	}()
	var cs []*client
	for i := 0; i < clients; i++ {
		cs = append(cs, s.connect(t, "tenant=t&after=0"))
		time.Sleep(2 * time.Millisecond)
	}
	<-pubDone
	for ci, c := range cs {
		for want := 1; want <= total; want++ {
			ev := c.next(t)
			if ev.id != strconv.Itoa(want) || ev.data != fmt.Sprintf(`{"event":"n","seq":%d,"data":%d}`, want, want) {
				t.Fatalf("client %d: got id %s data %s, want seq %d", ci, ev.id, ev.data, want)
			}
		}
	}
	// Resume after a given id: only what follows.
	c := s.connect(t, "tenant=t&after=2990")
	for want := 2991; want <= total; want++ {
		if ev := c.next(t); ev.id != strconv.Itoa(want) {
			t.Fatalf("resume: got id %s, want %d", ev.id, want)
		}
	}
	s.log.publish("t", "n", "0")
	if ev := c.next(t); ev.id != strconv.Itoa(total+1) {
		t.Fatalf("resume then live: got id %s", ev.id)
	}
}

func TestTenantIsolationAndUserTargeting(t *testing.T) {
	bothModes(t, testTenantIsolationAndUserTargeting)
}

func testTenantIsolationAndUserTargeting(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{}, m)
	a1 := s.connect(t, "tenant=a&user=u1")
	a1b := s.connect(t, "tenant=a&user=u1")
	a2 := s.connect(t, "tenant=a&user=u2")
	b1 := s.connect(t, "tenant=b&user=u3")
	s.waitStreams(t, 4)

	s.log.publish("b", "forB", `1`)
	s.hub.Publish(sse.Message{Tenant: "a", User: "u1", Event: "push", Record: []byte(`{"p":"x:y"}`), Data: []byte(`"d"`)})
	s.hub.Publish(sse.Message{Tenant: "b", User: "u1", Event: "wrongTenant", Record: []byte(`1`)})
	s.log.publish("a", "forA", `2`)

	for _, c := range []*client{a1, a1b} {
		if ev := c.next(t); ev.name != "push" || ev.id != "" || ev.data != `{"p":"x\u003ay"}` {
			t.Fatalf("user push: %+v", ev)
		}
		if ev := c.next(t); ev.name != "forA" {
			t.Fatalf("after user push: %+v", ev)
		}
	}
	if ev := a2.next(t); ev.name != "forA" {
		t.Fatalf("u2 got %+v", ev)
	}
	if ev := b1.next(t); ev.name != "forB" {
		t.Fatalf("tenant b got %+v", ev)
	}
	s.log.publish("b", "forB2", `3`)
	if ev := b1.next(t); ev.name != "forB2" {
		t.Fatalf("tenant b got %+v", ev)
	}
}

// Ephemeral messages (Seq 0) pass the backlog's dedup.
func TestEphemeralAfterBacklog(t *testing.T) { bothModes(t, testEphemeralAfterBacklog) }

func testEphemeralAfterBacklog(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{}, m)
	for i := 0; i < 5; i++ {
		s.log.publish("a", "e", `0`)
	}
	c := s.connect(t, "tenant=a&after=0")
	for i := 1; i <= 5; i++ {
		if ev := c.next(t); ev.id != strconv.Itoa(i) {
			t.Fatalf("backlog %d: %+v", i, ev)
		}
	}
	s.hub.Publish(sse.Message{Tenant: "a", Event: "eph", Record: []byte(`{}`)})
	if ev := c.next(t); ev.name != "eph" || ev.id != "" {
		t.Fatalf("ephemeral: %+v", ev)
	}
}

func TestKeepAlive(t *testing.T) { bothModes(t, testKeepAlive) }

func testKeepAlive(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{KeepAlive: 100 * time.Millisecond}, m)
	c := s.connect(t, "tenant=a")
	for i := 0; i < 2; i++ {
		select {
		case ev := <-c.events:
			want := "event:keepalive\ndata:{}\n\n"
			if i == 0 {
				want = "event:keepalive\ndata:{}\nretry:3000\n\n"
			}
			if ev.raw != want {
				t.Fatalf("keep-alive %d: %q, want %q", i, ev.raw, want)
			}
		case <-time.After(wait):
			t.Fatal("no keep-alive within", wait)
		}
	}
}

func TestCloseUserAndClose(t *testing.T) { bothModes(t, testCloseUserAndClose) }

func testCloseUserAndClose(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{}, m)
	u1 := s.connect(t, "tenant=a&user=u1")
	u1b := s.connect(t, "tenant=a&user=u1")
	u2 := s.connect(t, "tenant=a&user=u2")
	s.waitStreams(t, 3)
	s.hub.CloseUser("u1")
	u1.waitEnd(t)
	u1b.waitEnd(t)
	for i := 0; i < 2; i++ {
		if err := s.serveErr(t); !errors.Is(err, sse.ErrUserClosed) {
			t.Fatalf("Serve returned %v, want ErrUserClosed", err)
		}
	}
	s.waitStreams(t, 1)
	s.log.publish("a", "still", `1`)
	if ev := u2.next(t); ev.name != "still" {
		t.Fatalf("u2 got %+v", ev)
	}

	s.hub.Close()
	u2.waitEnd(t)
	if err := s.serveErr(t); !errors.Is(err, sse.ErrClosed) {
		t.Fatalf("Serve returned %v, want ErrClosed", err)
	}
	s.waitStreams(t, 0)
	// A closed hub refuses new streams at once, without a 200.
	resp, err := http.Get(s.URL + "/?tenant=a")
	if err == nil {
		resp.Body.Close()
	}
	if err := s.serveErr(t); !errors.Is(err, sse.ErrClosed) {
		t.Fatalf("Serve on a closed hub returned %v", err)
	}
}

func TestClientGoneEndsServe(t *testing.T) { bothModes(t, testClientGoneEndsServe) }

func testClientGoneEndsServe(t *testing.T, m mode) {
	// A detached stream notices at the next keep-alive tick (it reads the end of the
	// connection; over a connection it cannot read without waiting, at its next writes).
	s := newServer(t, sse.HubOptions{KeepAlive: 50 * time.Millisecond}, m)
	c := s.connect(t, "tenant=a")
	s.waitStreams(t, 1)
	c.resp.Body.Close()
	err := s.serveErr(t)
	if !m.detach && !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve returned %v, want context.Canceled", err)
	}
	var ne *net.OpError
	if m.detach && !errors.Is(err, io.EOF) && !errors.As(err, &ne) {
		t.Fatalf("Done got %v, want the end of the connection or a write error", err)
	}
	s.waitStreams(t, 0)
}

// A client that never reads is disconnected once its queue fills; the publisher never
// blocks and the other client gets everything, in order.
func TestSlowClientDisconnected(t *testing.T) {
	bothModes(t, func(t *testing.T, m mode) { testSlowAmongFast(t, m, 4, 1, 120, 3) })
}

// One client that never reads among several that do: it is disconnected once its queue
// fills, while Publish never waits on it and the others get every message, in order.
func TestSlowClientAmongFast(t *testing.T) {
	bothModes(t, func(t *testing.T, m mode) { testSlowAmongFast(t, m, 32, 4, 200, 8) })
}

// testSlowAmongFast publishes n messages of 64 KiB (far more than the slow client's small
// socket buffers hold) to a client that never reads and nFast that do, pacing on the fast
// ones (at most inflight of their messages unread, under their queue of queue) so that only
// the slow client can fill its queue.
func testSlowAmongFast(t *testing.T, m mode, queue, nFast, n, inflight int) {
	s := newServer(t, sse.HubOptions{QueueSize: queue}, m)
	s.rawStream(t, 4096) // never read
	fast := make([]*client, nFast)
	for i := range fast {
		fast[i] = s.connect(t, "tenant=a")
	}
	s.waitStreams(t, nFast+1)

	big := `"` + strings.Repeat("y", 64<<10) + `"`
	ids := make([][]string, nFast)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 1; i <= n; i++ {
			for c := range fast {
				for len(ids[c]) < i-inflight {
					select {
					case ev := <-fast[c].events:
						if ev.name != "keepalive" {
							ids[c] = append(ids[c], ev.id)
						}
					case <-time.After(wait):
						return
					}
				}
			}
			s.log.publish("a", "big", big)
		}
	}()
	select {
	case <-published:
	case <-time.After(120 * time.Second):
		t.Fatal("Publish blocked")
	}
	if err := s.serveErr(t); !errors.Is(err, sse.ErrSlow) {
		t.Fatalf("Serve of the slow client returned %v, want ErrSlow", err)
	}
	for c := range fast {
		for len(ids[c]) < n {
			ids[c] = append(ids[c], fast[c].next(t).id)
		}
		for i, id := range ids[c] {
			if id != strconv.Itoa(i+1) {
				t.Fatalf("fast client %d: message %d has id %s", c, i, id)
			}
		}
	}
	s.waitStreams(t, nFast)
}

// A client that stops reading for a while (its socket fills, its writes wait), then reads
// again, gets everything in order, and live messages after that.
func TestPausedClientCatchesUp(t *testing.T) { bothModes(t, testPausedClientCatchesUp) }

func testPausedClientCatchesUp(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{QueueSize: 1000}, m)
	conn := s.rawStream(t, 0)
	const n = 250 // 250 x 64 KiB: more than the socket buffers hold
	big := `"` + strings.Repeat("z", 64<<10) + `"`
	for i := 0; i < n; i++ {
		s.log.publish("a", "big", big)
	}
	for i := 0; i < 3; i++ { // and some while the stream is behind
		s.log.publish("a", "small", `{"i":`+strconv.Itoa(i)+`}`)
	}
	br := bufio.NewReader(conn)
	next := 1
	expectIDs := func(last int) {
		for ; next <= last; next++ {
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("after %d messages: %v", next-1, err)
				}
				if id, ok := strings.CutPrefix(line, "id:"); ok {
					if id != strconv.Itoa(next)+"\n" {
						t.Fatalf("message %d has id %q", next, id)
					}
					break
				}
			}
		}
	}
	expectIDs(n + 3)
	s.log.publish("a", "small", `{"i":3}`) // live again
	expectIDs(n + 4)
}

// A client that stops reading while nothing more is published (its write is stuck, its queue
// not full) is ended by the keep-alive loop.
func TestStuckWriteEnded(t *testing.T) { bothModes(t, testStuckWriteEnded) }

func testStuckWriteEnded(t *testing.T, m mode) {
	s := newServer(t, sse.HubOptions{QueueSize: 100000, KeepAlive: 100 * time.Millisecond}, m)
	s.rawStream(t, 0) // never read
	big := `"` + strings.Repeat("x", 64<<10) + `"`
	for i := 0; i < 400; i++ {
		s.log.publish("a", "big", big)
	}
	if err := s.serveErr(t); !errors.Is(err, sse.ErrSlow) {
		t.Fatalf("Serve returned %v, want ErrSlow", err)
	}
}

type mode struct{ detach bool }

// bothModes runs a test on attached and detached streams.
func bothModes(t *testing.T, f func(t *testing.T, m mode)) {
	t.Run("attached", func(t *testing.T) { f(t, mode{}) })
	t.Run("detached", func(t *testing.T) { f(t, mode{detach: true}) })
}

func TestExpiredStreamsEnd(t *testing.T) { bothModes(t, testExpiredStreamsEnd) }

// testExpiredStreamsEnd: a stream opened with an expiry ends with ErrExpired once the hub's
// clock (driven here) has passed it, and not before; a stream without one goes on.
func testExpiredStreamsEnd(t *testing.T, m mode) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(base.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	s := newServer(t, sse.HubOptions{KeepAlive: 40 * time.Millisecond, Now: clock}, m)
	short := s.connect(t, "tenant=a&expires="+strconv.FormatInt(base.Add(time.Hour).UnixNano(), 10))
	long := s.connect(t, "tenant=a")
	s.waitStreams(t, 2)
	// A keep-alive proves that the loop that checks expiry has run: still before it.
	select {
	case ev := <-short.events:
		if ev.name != "keepalive" {
			t.Fatalf("short got %+v, want a keep-alive", ev)
		}
	case <-time.After(wait):
		t.Fatal("no keep-alive within", wait)
	}
	s.log.publish("a", "before", `1`)
	for _, c := range []*client{short, long} {
		if ev := c.next(t); ev.name != "before" {
			t.Fatalf("got %+v", ev)
		}
	}
	now.Store(base.Add(time.Hour).UnixNano())
	short.waitEnd(t)
	if err := s.serveErr(t); !errors.Is(err, sse.ErrExpired) {
		t.Fatalf("Serve returned %v, want ErrExpired", err)
	}
	s.waitStreams(t, 1)
	s.log.publish("a", "after", `2`)
	if ev := long.next(t); ev.name != "after" {
		t.Fatalf("long got %+v", ev)
	}
}
