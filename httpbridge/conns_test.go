//go:build unix

package httpbridge_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge"
)

// heldListener counts the connections it accepted that are not closed yet, as rtbusd's
// connection cap counts them. Its connections embed the *net.TCPConn, as rtbusd's do.
type heldListener struct {
	net.Listener
	held atomic.Int64
}

type heldConn struct {
	*net.TCPConn
	l    *heldListener
	once sync.Once
}

func (l *heldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.held.Add(1)
	return &heldConn{TCPConn: c.(*net.TCPConn), l: l}, nil
}

func (c *heldConn) Close() error {
	c.once.Do(func() { c.l.held.Add(-1) })
	return c.TCPConn.Close()
}

// TestClientsThatLeaveFreeTheirConnections: streams on every transport whose clients come and
// go hold no connection of the server's longer than a keep-alive tick (half KeepAlive) after
// their client closed it, so that a server under churn (a benchmark's scenarios one after the
// other, mobile clients) does not reach its connection cap with clients long gone. An SSE
// stream used to be ended only when a second keep-alive failed to be written (two ticks
// after the first, at least).
func TestClientsThatLeaveFreeTheirConnections(t *testing.T) {
	const keepAlive = 4 * time.Second // ticks every 2 s
	e := newEnv(t, func(c *httpbridge.Config) { c.KeepAlive = keepAlive })
	u := e.signup("ann", "acme")
	ln := &heldListener{}
	hs := httptest.NewUnstartedServer(e.srv.Handler())
	ln.Listener = hs.Listener
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	addr := hs.Listener.Addr().String()
	q := "?token=" + url.QueryEscape(u.token)

	// open sends a request on a fresh connection and reads its response head (and, for a
	// reply with a length, its body).
	open := func(req string) (net.Conn, *http.Response, []byte) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		if resp.ContentLength > 0 {
			body = make([]byte, resp.ContentLength)
			if _, err := io.ReadFull(br, body); err != nil {
				t.Fatal(err)
			}
		}
		c.SetDeadline(time.Time{})
		return c, resp, body
	}
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	ws := "GET /ws" + q + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

	const n = 8 // clients of each transport per round
	for round := range 3 {
		var conns []net.Conn
		for range n {
			c, resp, _ := open(get("/sse" + q))
			if resp.StatusCode != 200 {
				t.Fatalf("sse: %s", resp.Status)
			}
			conns = append(conns, c)
			c, resp, _ = open(ws)
			if resp.StatusCode != 101 {
				t.Fatalf("ws: %s", resp.Status)
			}
			conns = append(conns, c)
			// A poll without a cursor answers at once; the next, with its cursor, waits.
			c, resp, body := open(get("/poll" + q))
			var first struct {
				LastEventID string `json:"last_event_id"`
				Conn        string `json:"conn"`
			}
			if resp.StatusCode != 200 || json.Unmarshal(body, &first) != nil {
				t.Fatalf("poll: %s %s", resp.Status, body)
			}
			fmt.Fprintf(c, "GET /poll%s&last_event_id=%s&conn=%s&wait=50 HTTP/1.1\r\nHost: x\r\n\r\n", q, first.LastEventID, first.Conn)
			conns = append(conns, c)
		}
		waitFor(t, "every stream to be served", func() bool { return ln.held.Load() == 3*n })
		// Their clients go at once, the pollers in the middle of their wait.
		for _, c := range conns {
			c.Close()
		}
		gone := time.Now()
		for ln.held.Load() != 0 {
			if time.Since(gone) > keepAlive*3/4 { // a tick, and some slack for a loaded machine
				t.Fatalf("round %d: %d connections still held %v after their clients closed them", round, ln.held.Load(), time.Since(gone))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
