package e2e

import (
	"bytes"
	"context"
	"encoding/json"
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

// httpClient bounds every plain request: only a broken test waits that long. Streams use
// their own contexts.
var httpClient = &http.Client{Timeout: 20 * time.Second}

type reply struct {
	code int
	body []byte
	err  error // the request failed (connection refused, timeout)
}

func (r reply) json(t testing.TB, v any) {
	t.Helper()
	testutil.DecodeReply(t, r.code, r.body, v)
}

func (r reply) field(t testing.TB, name string) string {
	t.Helper()
	return testutil.ReplyField(t, r.code, r.body, name)
}

// send sends a request to a node; auth is a whole Authorization value or "". body is nil, a
// string sent as it is, or a value sent as JSON.
func send(n *node, method, path, auth string, body any) reply {
	return sendWith(n, method, path, auth, nil, body)
}

// sendWith is send with more request headers.
func sendWith(n *node, method, path, auth string, hdr http.Header, body any) reply {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		return reply{err: err}
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, body: b, err: err}
}

// do is send that fails the test when the request gets no answer.
func do(t testing.TB, n *node, method, path, auth string, body any) reply {
	t.Helper()
	r := send(n, method, path, auth, body)
	if r.err != nil {
		t.Fatalf("%s %s%s: %v", method, n.url, path, r.err)
	}
	return r
}

// expect checks the status, and that an error reply is a JSON {"error": "..."}.
func expect(t testing.TB, r reply, code int) reply {
	t.Helper()
	testutil.ExpectStatus(t, r.code, r.body, code)
	return r
}

type user struct {
	id, name, pass, tenant, token string
}

func (u user) bearer() string { return "Bearer " + u.token }

// signup creates a user on node a and logs it in on node b.
func signup(t testing.TB, a, b *node, name, tenant string) user {
	t.Helper()
	u := user{name: name, pass: "pw-" + name, tenant: tenant}
	r := expect(t, do(t, a, "POST", "/users", "", map[string]any{"username": name, "password": u.pass, "tenant_id": tenant}), 201)
	u.id = r.field(t, "id")
	u.token = login(t, b, u)
	return u
}

// login logs u in on n. In a cluster a user made on another node may take a moment to reach
// n's view of the accounts: it waits until n knows the name (the admin route, which no
// failed-login limit counts), then logs in once.
func login(t testing.TB, n *node, u user) string {
	t.Helper()
	eventually(t, 10*time.Second, "user "+u.name+" known on "+n.name, func() bool {
		r := do(t, n, "POST", "/get_user", "", map[string]string{"admin_token": n.admin, "username": u.name})
		if r.code != 200 && r.code != 404 {
			t.Fatalf("get_user: %d %s", r.code, r.body)
		}
		return r.code == 200
	})
	return expect(t, do(t, n, "POST", "/login", "", map[string]string{"username": u.name, "password": u.pass}), 200).field(t, "jwt")
}

type record = testutil.Record

// insert inserts on n and returns the record it acknowledged.
func insert(t testing.TB, n *node, u user, body map[string]any) record {
	t.Helper()
	var out struct{ Event record }
	expect(t, do(t, n, "POST", "/insert", u.bearer(), body), 200).json(t, &out)
	return out.Event
}

// insertRetry inserts on n, again while n answers 503 (the event log without quorum, or
// n's index behind it), for up to 60 s. A 503 may leave the event stored: use it where the
// test counts only acknowledged events.
func insertRetry(t testing.TB, n *node, u user, body map[string]any) record {
	t.Helper()
	var out struct{ Event record }
	deadline := time.Now().Add(60 * time.Second)
	for tries := 1; ; tries++ {
		r := do(t, n, "POST", "/insert", u.bearer(), body)
		if r.code == 503 && time.Now().Before(deadline) {
			t.Logf("insert on %s, try %d: %s", n.name, tries, r.body)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		expect(t, r, 200).json(t, &out)
		return out.Event
	}
}

// msg is one stream message, whatever the transport.
type msg struct {
	event, data, id string
}

func (m msg) record(t testing.TB) record {
	t.Helper()
	var r record
	if err := json.Unmarshal([]byte(m.data), &r); err != nil {
		t.Fatalf("message data %q: %v", m.data, err)
	}
	return r
}

// stream is an open stream read by a goroutine into msgs.
type stream struct {
	msgs   chan msg
	done   chan struct{} // closed when the stream ends
	cancel func()
	last   atomic.Value // string: the id of the last message that had one
}

func newStream() *stream {
	return &stream{msgs: make(chan msg, 100000), done: make(chan struct{})}
}

func (s *stream) put(m msg) {
	if m.id != "" {
		s.last.Store(m.id)
	}
	s.msgs <- m
}

// lastID is the cursor to resume from: the id of the last message that had one.
func (s *stream) lastID() string {
	id, _ := s.last.Load().(string)
	return id
}

func (s *stream) close() { s.cancel() }

// next returns the next message; it fails when none comes within bound.
func (s *stream) next(t testing.TB, bound time.Duration) msg {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-s.done:
		select {
		case m := <-s.msgs:
			return m
		default:
		}
		t.Fatal("stream ended, want a message")
	case <-time.After(bound):
		t.Fatalf("no stream message within %v", bound)
	}
	return msg{}
}

// quiet fails if a message comes within d.
func (s *stream) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.msgs:
		t.Fatalf("unexpected message %+v", m)
	case <-time.After(d):
	}
}

// ended reports whether the stream has ended.
func (s *stream) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// transport opens a stream of one transport on a node. route is "" for the caller's tenant
// or "/tenant"; cursor "" for the state, else a Last-Event-ID. A refused stream returns nil
// and the status and body.
type transport struct {
	name string
	open func(n *node, route, token, cursor string) (s *stream, code int, body string)
}

var transports = []transport{{"sse", openSSE}, {"ws", openWS}, {"poll", openPoll}}

func streamURL(n *node, kind, route, token, cursor string) string {
	q := url.Values{}
	if token != "" {
		q.Set("token", token)
	}
	if cursor != "" {
		q.Set("last_event_id", cursor)
	}
	u := n.url + "/" + kind + route
	if kind == "sse" && route != "" {
		u = n.url + "/events" + route
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func openSSE(n *node, route, token, cursor string) (*stream, int, string) {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", streamURL(n, "sse", route, "", ""), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if cursor != "" {
		req.Header.Set("Last-Event-ID", cursor)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, 0, err.Error()
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode, string(b)
	}
	s := newStream()
	s.cancel = func() { cancel(); resp.Body.Close() }
	go func() {
		defer close(s.done)
		testutil.ReadSSE(resp.Body, func(m testutil.SSEMessage) {
			if m.Event != "keepalive" && m.Event != "" {
				s.put(msg{event: m.Event, data: m.Data, id: m.ID})
			}
		})
	}()
	return s, 200, ""
}

// jsonMsg is a WebSocket frame's or a poll reply's message.
type jsonMsg struct {
	ID    string          `json:"id"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

func openWS(n *node, route, token, cursor string) (*stream, int, string) {
	u := "ws" + strings.TrimPrefix(streamURL(n, "ws", route, token, cursor), "http")
	ctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	conn, resp, err := websocket.Dial(dctx, u, nil)
	if err != nil {
		cancel()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			b, _ := io.ReadAll(resp.Body)
			return nil, resp.StatusCode, string(b)
		}
		return nil, 0, err.Error()
	}
	conn.SetReadLimit(1 << 22)
	s := newStream()
	s.cancel = func() { cancel(); conn.CloseNow() }
	go func() {
		defer close(s.done)
		for {
			typ, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var j jsonMsg
			if typ != websocket.MessageText || json.Unmarshal(b, &j) != nil {
				return
			}
			s.put(msg{event: j.Event, data: string(j.Data), id: j.ID})
		}
	}()
	return s, 200, ""
}

type pollBody struct {
	Messages    []jsonMsg `json:"messages"`
	LastEventID string    `json:"last_event_id"`
	Conn        string    `json:"conn"`
}

// openPoll polls in a loop, each poll with the cursor and connection id of the last reply,
// until a poll fails or the stream is closed.
func openPoll(n *node, route, token, cursor string) (*stream, int, string) {
	ctx, cancel := context.WithCancel(context.Background())
	poll := func(cursor, conn string) (int, pollBody, string) {
		u := streamURL(n, "poll", route, "", cursor)
		q := url.Values{"wait": {"5"}}
		if conn != "" {
			q.Set("conn", conn)
		}
		if strings.Contains(u, "?") {
			u += "&" + q.Encode()
		} else {
			u += "?" + q.Encode()
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, pollBody{}, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var pb pollBody
		if resp.StatusCode == 200 && json.Unmarshal(b, &pb) != nil {
			return 0, pb, string(b)
		}
		return resp.StatusCode, pb, string(b)
	}
	code, first, body := poll(cursor, "")
	if code != 200 {
		cancel()
		return nil, code, body
	}
	s := newStream()
	s.cancel = cancel
	go func() {
		defer close(s.done)
		pb := first
		for {
			for _, m := range pb.Messages {
				s.put(msg{event: m.Event, data: string(m.Data), id: m.ID})
			}
			if pb.LastEventID != "" { // the resume point after the reply's last message
				s.last.Store(pb.LastEventID)
			}
			code, next, _ := poll(pb.LastEventID, pb.Conn)
			if code != 200 {
				return
			}
			pb = next
		}
	}()
	return s, 200, ""
}

// mustOpen opens a stream that must be accepted.
func mustOpen(t testing.TB, tr transport, n *node, route, token, cursor string) *stream {
	t.Helper()
	s, code, body := tr.open(n, route, token, cursor)
	if s == nil {
		t.Fatalf("%s stream on %s: status %d: %s", tr.name, n.name, code, body)
	}
	t.Cleanup(s.close)
	return s
}
