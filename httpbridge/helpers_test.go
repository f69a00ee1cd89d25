package httpbridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge"
	"github.com/rtbus/rtbus/internal/testutil"
)

const adminToken = "test-admin-token"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testClock is a clock the test advances; timers fire when it passes their time.
type testClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*testTimer
}

type testTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newTestClock() *testClock { return &testClock{now: time.Unix(1_800_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) At(at time.Time, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &testTimer{at: at, f: f}
	if !at.After(c.now) {
		t.stopped = true
		go f()
	} else {
		c.timers = append(c.timers, t)
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock and fires the timers it passes.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var fire []func()
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			fire = append(fire, t.f)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, f := range fire {
		go f()
	}
}

type env struct {
	t     testing.TB
	dir   string
	clock *testClock
	bus   *bus.Broker
	srv   *httpbridge.Server
	hs    *httptest.Server
	ihs   *httptest.Server // the internal API
	url   string
	iurl  string
	cl    *http.Client
	cfg   httpbridge.Config
}

func testConfig(dir string, c *testClock) httpbridge.Config {
	return httpbridge.Config{
		DataDir: dir, AdminToken: adminToken, BcryptCost: bcrypt.MinCost, Clock: c,
		JWTExpiry: time.Hour, Leeway: time.Second, KeepAlive: time.Minute, Logger: quiet,
	}
}

// newEnv starts a server on a real listener over a real store in a temporary directory.
func newEnv(t testing.TB, mod func(*httpbridge.Config)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clock: newTestClock(), bus: bus.New()}
	e.cfg = testConfig(e.dir, e.clock)
	if mod != nil {
		mod(&e.cfg)
	}
	e.start()
	t.Cleanup(func() { e.stop(); e.bus.Close() })
	return e
}

func (e *env) start() {
	e.t.Helper()
	srv, err := httpbridge.New(e.bus, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = srv
	e.hs = httptest.NewServer(srv.Handler())
	e.url, e.cl = e.hs.URL, e.hs.Client()
	e.ihs = httptest.NewServer(srv.InternalHandler())
	e.iurl = e.ihs.URL
}

// stop shuts the server down as rtbusd does: the bridge (streams end), then the listener.
func (e *env) stop() {
	if e.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		e.t.Errorf("shutdown: %v", err)
	}
	e.hs.Close()
	e.ihs.Close()
	e.srv = nil
}

func (e *env) restart() {
	e.stop()
	e.start()
}

type reply struct {
	code int
	body []byte
	hdr  http.Header
}

func (r reply) json(t testing.TB, v any) {
	t.Helper()
	testutil.DecodeReply(t, r.code, r.body, v)
}

func (r reply) field(t testing.TB, name string) string {
	t.Helper()
	return testutil.ReplyField(t, r.code, r.body, name)
}

// do sends a request; auth is a full Authorization value ("Bearer …", "Basic …") or "".
func (e *env) do(method, path, auth string, body any) reply {
	e.t.Helper()
	return e.doWith(method, path, auth, nil, body)
}

// doWith is do with more request headers.
func (e *env) doWith(method, path, auth string, hdr http.Header, body any) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	url := e.url + path
	if strings.HasPrefix(path, "http") { // another listener's URL
		url = path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
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
	resp, err := e.cl.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, b, resp.Header}
}

// expect checks the status code, and that an error reply is a JSON {"error": "..."}.
func (e *env) expect(r reply, code int) reply {
	e.t.Helper()
	testutil.ExpectStatus(e.t, r.code, r.body, code)
	return r
}

type user struct {
	id, name, tenant, token string
}

func (u user) bearer() string { return "Bearer " + u.token }

// signup creates a user of tenant and logs it in.
func (e *env) signup(name, tenant string) user {
	e.t.Helper()
	r := e.expect(e.do("POST", "/users", "", map[string]any{"username": name, "password": "pw-" + name, "tenant_id": tenant}), 201)
	u := user{id: r.field(e.t, "id"), name: name, tenant: tenant}
	u.token = e.expect(e.do("POST", "/login", "", map[string]string{"username": name, "password": "pw-" + name}), 200).field(e.t, "jwt")
	return u
}

type record = testutil.Record

func (e *env) insert(u user, body map[string]any) record {
	e.t.Helper()
	var out struct{ Event record }
	e.expect(e.do("POST", "/insert", u.bearer(), body), 200).json(e.t, &out)
	return out.Event
}

// sseMsg is one message as a client parses it.
type sseMsg struct {
	event, data, id string
	retry           bool
}

func fromSSE(m testutil.SSEMessage) sseMsg {
	return sseMsg{event: m.Event, data: m.Data, id: m.ID, retry: m.Retry}
}

// stream is an open SSE connection read by a goroutine.
type stream struct {
	resp   *http.Response
	msgs   chan sseMsg
	done   chan struct{} // closed when the connection ends
	cancel context.CancelFunc
}

func (e *env) openStream(path, auth string, hdr map[string]string) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.cl.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		e.t.Fatalf("stream %s: status %d: %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		e.t.Errorf("stream Content-Type %q", ct)
	}
	s := &stream{resp: resp, msgs: make(chan sseMsg, 1000), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.done)
		testutil.ReadSSE(resp.Body, func(m testutil.SSEMessage) {
			if m.Event != "keepalive" {
				s.msgs <- fromSSE(m)
			}
		})
	}()
	e.t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next message, failing after a generous bound (only a broken test waits).
func (s *stream) next(t *testing.T) sseMsg {
	t.Helper()
	return nextMsg(t, s.msgs, s.done)
}

// quiet checks that nothing arrives within a short while.
func (s *stream) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	quietMsgs(t, s.msgs, d)
}

// nextMsg is the next message of a stream's messages (msgs), which are done when its
// stream ends; it fails when there is none within 10 s, or none left once done.
func nextMsg(t *testing.T, msgs <-chan sseMsg, done <-chan struct{}) sseMsg {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-done:
		select {
		case m := <-msgs:
			return m
		default:
		}
		t.Fatal("stream ended, want a message")
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10 s")
	}
	return sseMsg{}
}

// quietMsgs fails if a message arrives within d.
func quietMsgs(t *testing.T, msgs <-chan sseMsg, d time.Duration) {
	t.Helper()
	select {
	case m := <-msgs:
		t.Fatalf("unexpected message %+v", m)
	case <-time.After(d):
	}
}

func (s *stream) ended(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open after 10 s")
	}
}

func (m sseMsg) record(t *testing.T) record {
	t.Helper()
	var r record
	if err := json.Unmarshal([]byte(m.data), &r); err != nil {
		t.Fatalf("message data %q: %v", m.data, err)
	}
	return r
}
