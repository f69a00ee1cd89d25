package httpbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rtbus/rtbus/internal/testutil"
)

// A stream client over one transport, reading into a channel what the server sends: the
// same messages whatever the transport.
type tclient struct {
	msgs   chan sseMsg
	done   chan struct{} // closed when the stream ends
	beats  atomic.Int32  // keep-alives seen: SSE keepalive events, WebSocket pings, empty polls
	cancel context.CancelFunc
	status atomic.Int32 // long-polling: the status of the poll that ended the stream
	code   atomic.Int32 // WebSocket: the close code the server sent
}

func (c *tclient) next(t *testing.T) sseMsg {
	t.Helper()
	return nextMsg(t, c.msgs, c.done)
}

func (c *tclient) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	quietMsgs(t, c.msgs, d)
}

// ended waits for the stream's end and returns the messages that came before it.
func (c *tclient) ended(t *testing.T) []sseMsg {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open after 10 s")
	}
	var ms []sseMsg
	for {
		select {
		case m := <-c.msgs:
			ms = append(ms, m)
		default:
			return ms
		}
	}
}

func (c *tclient) close() { c.cancel() }

// transport opens a stream over one transport: path is the route without its transport
// prefix ("/acme" for a tenant route, "" for the caller's tenant) plus a query; auth a full
// Authorization value or ""; hdr more headers. A refused stream returns the status and body.
type streamTransport struct {
	name string
	open func(e *env, path, auth string, hdr map[string]string) (c *tclient, status int, body string)
}

var streamTransports = []streamTransport{
	{"sse", openSSE},
	{"ws", openWS},
	{"poll", openPoll},
}

func splitPath(path string) (route, query string) {
	route, query, _ = strings.Cut(path, "?")
	return route, query
}

func openSSE(e *env, path, auth string, hdr map[string]string) (*tclient, int, string) {
	route, query := splitPath(path)
	u := e.url + "/sse"
	if route != "" {
		u = e.url + "/events" + route
	}
	if query != "" {
		u += "?" + query
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	setHeaders(req.Header, auth, hdr)
	resp, err := e.cl.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode, string(b)
	}
	c := &tclient{msgs: make(chan sseMsg, 10000), done: make(chan struct{}), cancel: func() { cancel(); resp.Body.Close() }}
	go func() {
		defer close(c.done)
		testutil.ReadSSE(resp.Body, func(m testutil.SSEMessage) {
			if m.Event == "keepalive" {
				c.beats.Add(1)
			} else {
				c.msgs <- fromSSE(m)
			}
		})
	}()
	e.t.Cleanup(c.close)
	return c, 200, ""
}

func setHeaders(h http.Header, auth string, hdr map[string]string) {
	if auth != "" {
		h.Set("Authorization", auth)
	}
	for k, v := range hdr {
		h.Set(k, v)
	}
}

// jsonMsg is a WebSocket frame's or a poll reply's message.
type jsonMsg struct {
	ID    string          `json:"id"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

func (j jsonMsg) sse() sseMsg { return sseMsg{event: j.Event, data: string(j.Data), id: j.ID} }

func openWS(e *env, path, auth string, hdr map[string]string) (*tclient, int, string) {
	route, query := splitPath(path)
	u := "ws" + strings.TrimPrefix(e.url, "http") + "/ws" + route
	if query != "" {
		u += "?" + query
	}
	h := http.Header{}
	setHeaders(h, auth, hdr)
	c := &tclient{msgs: make(chan sseMsg, 10000), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPHeader:     h,
		OnPingReceived: func(context.Context, []byte) bool { c.beats.Add(1); return true },
	})
	if err != nil {
		cancel()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			b, _ := io.ReadAll(resp.Body)
			return nil, resp.StatusCode, string(b)
		}
		e.t.Fatalf("websocket dial %s: %v", u, err)
	}
	conn.SetReadLimit(1 << 22)
	c.cancel = func() { cancel(); conn.CloseNow() }
	go func() {
		defer close(c.done)
		for {
			typ, b, err := conn.Read(ctx)
			if err != nil {
				c.code.Store(int32(websocket.CloseStatus(err)))
				return
			}
			var j jsonMsg
			if typ != websocket.MessageText || json.Unmarshal(b, &j) != nil {
				e.t.Errorf("websocket frame %v %q", typ, b)
				return
			}
			c.msgs <- j.sse()
		}
	}()
	e.t.Cleanup(c.close)
	return c, 200, ""
}

type pollBody struct {
	Messages    []jsonMsg `json:"messages"`
	LastEventID string    `json:"last_event_id"`
	Conn        string    `json:"conn"`
}

// openPoll polls in a loop, each poll with the cursor and connection id of the last reply
// (the first with the given headers and query), until a poll fails or close.
func openPoll(e *env, path, auth string, hdr map[string]string) (*tclient, int, string) {
	route, query := splitPath(path)
	base := e.url + "/poll" + route
	q, _ := url.ParseQuery(query)
	if q.Get("wait") == "" {
		q.Set("wait", "1")
	}
	ctx, cancel := context.WithCancel(context.Background())
	poll := func(q url.Values, hdr map[string]string) (int, pollBody, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"?"+q.Encode(), nil)
		setHeaders(req.Header, auth, hdr)
		resp, err := e.cl.Do(req)
		if err != nil {
			return 0, pollBody{}, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var pb pollBody
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(b, &pb); err != nil || pb.Conn == "" || pb.LastEventID == "" {
				e.t.Errorf("poll reply %s: %v", b, err)
			}
		}
		return resp.StatusCode, pb, string(b)
	}
	code, first, body := poll(q, hdr)
	if code != 200 {
		cancel()
		return nil, code, body
	}
	c := &tclient{msgs: make(chan sseMsg, 10000), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(c.done)
		pb := first
		for {
			if len(pb.Messages) == 0 {
				c.beats.Add(1)
			}
			for _, m := range pb.Messages {
				c.msgs <- m.sse()
			}
			q.Set("last_event_id", pb.LastEventID)
			q.Set("conn", pb.Conn)
			code, next, _ := poll(q, nil)
			if code != 200 {
				c.status.Store(int32(code))
				return
			}
			if next.Conn != pb.Conn {
				e.t.Errorf("poll conn changed from %s to %s", pb.Conn, next.Conn)
			}
			pb = next
		}
	}()
	e.t.Cleanup(c.close)
	return c, 200, ""
}

// mustOpen opens a stream that must be accepted.
func mustOpen(t *testing.T, tr streamTransport, e *env, path, auth string, hdr map[string]string) *tclient {
	t.Helper()
	c, code, body := tr.open(e, path, auth, hdr)
	if c == nil {
		t.Fatalf("%s %s: status %d: %s", tr.name, path, code, body)
	}
	return c
}

// refused checks that a stream is refused with code and a JSON error.
func refused(t *testing.T, tr streamTransport, e *env, path, auth string, hdr map[string]string, code int) {
	t.Helper()
	c, got, body := tr.open(e, path, auth, hdr)
	if c != nil {
		c.close()
		t.Fatalf("%s %s accepted, want %d", tr.name, path, code)
	}
	var m map[string]string
	if got != code || json.Unmarshal([]byte(body), &m) != nil || m["error"] == "" {
		t.Fatalf("%s %s: %d %s, want %d and a JSON error", tr.name, path, got, body, code)
	}
}

var errTest = errors.New("test")

func jsonUnmarshalBytes(b []byte, v any) error { return json.Unmarshal(b, v) }
