package browsertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rtbus/rtbus/httpbridge"
)

const adminToken = "browser-test-admin-token"

// env is a bridge over a real store in a temporary directory, on a real listener, reached by
// the browser through a TCP proxy that the test can cut: a network drop as the browser sees
// one. Restart replaces the server (same directory, new listener) behind the same proxy.
type env struct {
	t     *testing.T
	cfg   httpbridge.Config
	srv   *httpbridge.Server
	hs    *httptest.Server
	in    *httptest.Server // the internal API, for the backend's pushes
	proxy *proxy
	url   string // the proxy's URL: what the browser uses

	// refuse, when it returns true for a request, answers it 502 in front of the bridge, as a
	// proxy that does not pass WebSocket upgrades (or streams) would.
	refuse atomic.Pointer[func(*http.Request) bool]
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with the configuration changed by mod.
func newEnvWith(t *testing.T, mod func(*httpbridge.Config)) *env {
	t.Helper()
	e := &env{t: t}
	e.cfg = httpbridge.Config{
		DataDir: t.TempDir(), AdminToken: adminToken, BcryptCost: bcrypt.MinCost,
		JWTExpiry: time.Hour, KeepAlive: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&e.cfg)
	}
	e.start()
	e.proxy = newProxy(t, e.hs.Listener.Addr().String())
	e.url = "http://" + e.proxy.addr()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	e.t.Helper()
	srv, err := httpbridge.New(nil, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = srv
	h := srv.Handler()
	e.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := e.refuse.Load(); f != nil && (*f)(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, `{"error":"refused by the test's proxy"}`)
			return
		}
		h.ServeHTTP(w, r)
	}))
	e.in = httptest.NewServer(srv.InternalHandler())
}

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
	e.in.Close()
	e.srv = nil
}

// restart shuts the server down (every stream ends, server-side), then starts a new one on
// the same directory; between the two, mid(), if not nil, runs against the new server before
// the proxy leads anyone to it.
func (e *env) restart(mid func()) {
	e.t.Helper()
	e.stop()
	e.start()
	if mid != nil {
		mid()
	}
	e.proxy.setTarget(e.hs.Listener.Addr().String())
}

func (e *env) refuseWhen(f func(*http.Request) bool) { e.refuse.Store(&f) }

// push sends an ephemeral message through the internal API, as a backend does; user "" is
// the whole tenant. It returns how many streams received it.
func (e *env) push(tenant, user, event string, data any) int {
	e.t.Helper()
	b, _ := json.Marshal(map[string]any{"tenant_id": tenant, "user": user, "event": event, "data": data})
	req, _ := http.NewRequest("POST", e.in.URL+"/v1/messages", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := e.in.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Delivered int }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("POST /v1/messages: status %d, %v", resp.StatusCode, err)
	}
	return out.Delivered
}

// do sends a request straight to the server (not through the proxy).
func (e *env) do(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.hs.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.hs.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) must(code int, method, path, token string, body any) map[string]json.RawMessage {
	e.t.Helper()
	got, b := e.do(method, path, token, body)
	if got != code {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, code, b)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatalf("%s %s: %s: %v", method, path, b, err)
	}
	return m
}

type user struct{ name, password, tenant, token string }

// signup creates a user of tenant and logs it in.
func (e *env) signup(name, tenant string) user {
	e.t.Helper()
	u := user{name: name, password: "pw-" + name, tenant: tenant}
	e.must(201, "POST", "/users", "", map[string]string{"username": name, "password": u.password, "tenant_id": tenant})
	if err := json.Unmarshal(e.must(200, "POST", "/login", "", map[string]string{"username": name, "password": u.password})["jwt"], &u.token); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// record is an event record as the server sends it.
type record struct {
	ID           string          `json:"id"`
	Event        string          `json:"event"`
	CollectionID string          `json:"collection_id"`
	Data         json.RawMessage `json:"data"`
	Seq          uint64          `json:"seq"`
}

func (e *env) insert(u user, event, collection string, data any) record {
	e.t.Helper()
	m := e.must(200, "POST", "/insert", u.token, map[string]any{"event": event, "collection_id": collection, "data": data})
	var r record
	if err := json.Unmarshal(m["event"], &r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// proxy forwards TCP connections to a target; down cuts every connection it carries and
// refuses new ones (accepted, then closed at once) until up.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		target := p.target
		p.wg.Add(1)
		p.mu.Unlock()
		go p.pipe(c, target)
	}
}

func (p *proxy) pipe(c net.Conn, target string) {
	defer p.wg.Done()
	defer p.forget(c)
	d, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(d) {
		return
	}
	defer p.forget(d)
	done := make(chan struct{})
	go func() {
		io.Copy(d, c)
		d.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, d)
	c.(*net.TCPConn).CloseWrite()
	<-done
}

// track adds c to the connections a cut closes; false (and c closed) if down meanwhile.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *proxy) setTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// isUpgrade tells a WebSocket handshake.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}
