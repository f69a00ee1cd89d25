package httpbridge_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge"
	"github.com/rtbus/rtbus/internal/testutil"
)

// admin calls the internal API with the admin token.
func (e *env) admin(method, path string, body any) reply {
	e.t.Helper()
	return e.do(method, e.iurl+path, "Bearer "+adminToken, body)
}

func TestInternalAuthAndIsolation(t *testing.T) {
	e := newEnv(t, nil)
	routes := []struct{ method, path string }{
		{"POST", "/v1/messages"}, {"POST", "/v1/events"}, {"POST", "/v1/session-blacklist"},
		{"GET", "/v1/session-blacklist/x"}, {"DELETE", "/v1/session-blacklist/x"},
		{"GET", "/v1/connections"},
	}
	for _, r := range routes {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + adminToken, "Bearer " + adminToken + "x", "Bearer"} {
			e.expect(e.do(r.method, e.iurl+r.path, auth, `{}`), 401)
		}
		// Nothing of the internal API on the public listener, whatever the credentials.
		e.expect(e.do(r.method, r.path, "Bearer "+adminToken, `{}`), 404)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		e.expect(e.do("GET", p, "", nil), 200)
		e.expect(e.do("GET", e.iurl+p, "", nil), 200)
	}
	e.expect(e.admin("GET", "/v1/messages", nil), 405)
	e.expect(e.admin("PUT", "/v1/session-blacklist/x", nil), 405)
	e.expect(e.admin("GET", "/v2/nothing", nil), 404)
	// Public routes are not on the internal listener.
	e.expect(e.admin("POST", "/login", `{"username":"a","password":"b"}`), 404)
	// Bodies are bounded.
	big := `{"tenant_id":"acme","event":"x","data":"` + strings.Repeat("a", 2<<20) + `"}`
	e.expect(e.admin("POST", "/v1/messages", big), 413)
}

func TestInternalMessages(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.signup("ann", "acme")
	ann2 := e.login("ann") // a second device
	bob := e.signup("bob", "acme")
	zed := e.signup("zed", "zeta")
	a1 := e.openStream("/sse", ann.bearer(), nil)
	a2 := e.openStream("/sse?token="+ann2.token, "", nil)
	b1 := e.openStream("/sse", bob.bearer(), nil)
	z1 := e.openStream("/sse", zed.bearer(), nil)

	var out struct{ Delivered int }
	e.expect(e.admin("POST", "/v1/messages", map[string]any{"tenant_id": "acme", "user": "ann", "event": "ping", "data": map[string]int{"n": 1}}), 202).json(t, &out)
	if out.Delivered != 2 {
		t.Fatalf("push to ann's two devices delivered %d", out.Delivered)
	}
	for _, s := range []*stream{a1, a2} {
		if m := s.next(t); m.event != "ping" || m.id != "" || m.data != `{"n":1}` {
			t.Fatalf("ann's device got %+v", m)
		}
	}
	// By user id, too.
	e.expect(e.admin("POST", "/v1/messages", map[string]any{"tenant_id": "acme", "user": ann.id, "event": "by-id", "data": 2}), 202).json(t, &out)
	if out.Delivered != 2 || a1.next(t).event != "by-id" || a2.next(t).event != "by-id" {
		t.Fatalf("push by id: %d", out.Delivered)
	}
	b1.quiet(t, 50*time.Millisecond)
	// The whole tenant.
	e.expect(e.admin("POST", "/v1/messages", map[string]any{"tenant_id": "acme", "event": "all", "data": nil}), 202).json(t, &out)
	if out.Delivered != 3 {
		t.Fatalf("push to the tenant delivered %d", out.Delivered)
	}
	for _, s := range []*stream{a1, a2, b1} {
		if m := s.next(t); m.event != "all" {
			t.Fatalf("got %+v", m)
		}
	}
	z1.quiet(t, 50*time.Millisecond)
	// Nobody listening: delivered 0.
	e.expect(e.admin("POST", "/v1/messages", map[string]any{"tenant_id": "nobody", "event": "x", "data": 1}), 202).json(t, &out)
	if out.Delivered != 0 {
		t.Fatalf("delivered %d", out.Delivered)
	}
	for _, bad := range []any{
		map[string]any{"event": "x", "data": 1},                                 // no tenant
		map[string]any{"tenant_id": "acme", "data": 1},                          // no event
		map[string]any{"tenant_id": "acme", "event": "x", "data": 1, "user": 7}, // not a string
		`{"tenant_id":"acme","event":"x","data":}`,                              // bad JSON
		`[1]`, // not an object
		"",    // empty
	} {
		e.expect(e.admin("POST", "/v1/messages", bad), 400)
	}
	// Another tenant's user, or nobody: 404.
	e.expect(e.admin("POST", "/v1/messages", map[string]any{"tenant_id": "acme", "user": "zed", "event": "x", "data": 1}), 404)
	e.expect(e.admin("POST", "/v1/messages", map[string]any{"tenant_id": "acme", "user": "nobody", "event": "x", "data": 1}), 404)
}

func TestInternalEvents(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.signup("ann", "acme")
	e.signup("zed", "zeta")
	st := e.openStream("/sse", ann.bearer(), nil)
	var out struct{ Event record }
	e.expect(e.admin("POST", "/v1/events", map[string]any{"tenant_id": "acme", "user": "ann", "event": "note", "data": map[string]string{"x": "y"}, "collection_id": "c1"}), 200).json(t, &out)
	if out.Event.UserID != ann.id || out.Event.TenantID != "acme" || !out.Event.Published || out.Event.CollectionID != "c1" {
		t.Fatalf("insert on behalf of ann: %+v", out.Event)
	}
	if m := st.next(t); m.event != "note" || m.id == "" {
		t.Fatalf("stream got %+v", m)
	}
	// The event is ann's, as if she inserted it.
	var mine struct{ Events []record }
	e.expect(e.do("GET", "/user_events", ann.bearer(), nil), 200).json(t, &mine)
	if len(mine.Events) != 1 || mine.Events[0].ID != out.Event.ID {
		t.Fatalf("ann's events %+v", mine.Events)
	}
	// A future event is scheduled as an /insert would be.
	e.expect(e.admin("POST", "/v1/events", map[string]any{"tenant_id": "acme", "user": ann.id, "event": "later", "data": 1, "timestamp": e.clock.Now().Unix() + 60}), 200).json(t, &out)
	if out.Event.Published {
		t.Fatal("future event published at once")
	}
	e.expect(e.admin("POST", "/v1/events", map[string]any{"tenant_id": "acme", "event": "x", "data": 1}), 400)
	e.expect(e.admin("POST", "/v1/events", map[string]any{"user": "ann", "event": "x", "data": 1}), 400)
	e.expect(e.admin("POST", "/v1/events", map[string]any{"tenant_id": "acme", "user": "ann", "data": 1}), 400)
	e.expect(e.admin("POST", "/v1/events", map[string]any{"tenant_id": "acme", "user": "ann", "event": "x"}), 400)
	e.expect(e.admin("POST", "/v1/events", map[string]any{"tenant_id": "acme", "user": "zed", "event": "x", "data": 1}), 404)
	// user_id is how bus inserts name their user; here it would be silently overridden.
	if r := e.expect(e.admin("POST", "/v1/events", map[string]any{"tenant_id": "acme", "user": "ann", "user_id": "someone-else", "event": "x", "data": 1}), 400); !strings.Contains(r.field(t, "error"), "user_id") {
		t.Fatalf("user_id refused without naming it: %v", r)
	}
}

func TestInternalBlacklist(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.signup("ann", "acme")
	id := jti(t, ann.token)
	st := e.openStream("/sse", ann.bearer(), nil)
	e.expect(e.admin("GET", "/v1/session-blacklist/"+id, nil), 404)
	e.expect(e.admin("DELETE", "/v1/session-blacklist/"+id, nil), 404)

	start := time.Now()
	var added struct {
		SessionID string `json:"session_id"`
		Expires   int64
	}
	e.expect(e.admin("POST", "/v1/session-blacklist", map[string]any{"session_id": id, "validity_seconds": 600}), 201).json(t, &added)
	st.killed(t, start)
	if want := e.clock.Now().Unix() + 600; added.SessionID != id || added.Expires != want {
		t.Fatalf("blacklist reply %+v, want expires %d", added, want)
	}
	e.expect(e.do("GET", "/verify", ann.bearer(), nil), 401)
	var got map[string]any
	e.expect(e.admin("GET", "/v1/session-blacklist/"+id, nil), 200).json(t, &got)
	if got["session_id"] != id || got["expires"] != float64(added.Expires) {
		t.Fatalf("get %v", got)
	}

	// Kept across a restart.
	e.restart()
	e.expect(e.do("GET", "/verify", ann.bearer(), nil), 401)
	e.expect(e.admin("GET", "/v1/session-blacklist/"+id, nil), 200)

	// Delete un-blacklists.
	r := e.expect(e.admin("DELETE", "/v1/session-blacklist/"+id, nil), 204)
	if len(r.body) != 0 {
		t.Fatalf("204 with a body %q", r.body)
	}
	e.expect(e.do("GET", "/verify", ann.bearer(), nil), 200)
	e.expect(e.admin("GET", "/v1/session-blacklist/"+id, nil), 404)
	e.restart()
	e.expect(e.do("GET", "/verify", ann.bearer(), nil), 200)

	// An entry ends at its expiry, and is pruned from the store: not back after a restart
	// even with the clock turned back.
	e.expect(e.admin("POST", "/v1/session-blacklist", map[string]any{"session_id": "short", "validity_seconds": 30}), 201)
	e.expect(e.admin("POST", "/v1/session-blacklist", map[string]any{"session_id": id, "validity_seconds": 30}), 201)
	e.expect(e.do("GET", "/verify", ann.bearer(), nil), 401)
	e.clock.Advance(31 * time.Second)
	e.expect(e.do("GET", "/verify", ann.bearer(), nil), 200)
	e.expect(e.admin("GET", "/v1/session-blacklist/short", nil), 404)
	e.clock.Advance(2 * time.Minute) // a pruning round
	waitFor(t, "pruning", func() bool {
		e.restart()
		e.clock.Advance(-150 * time.Second)
		defer e.clock.Advance(150 * time.Second)
		return e.admin("GET", "/v1/session-blacklist/short", nil).code == 404
	})

	for _, bad := range []any{
		map[string]any{"validity_seconds": 10},
		map[string]any{"session_id": "x"},
		map[string]any{"session_id": "x", "validity_seconds": 0},
		map[string]any{"session_id": "x", "validity_seconds": -5},
		map[string]any{"session_id": "x", "validity_seconds": 1.5},
		map[string]any{"session_id": "x", "validity_seconds": "10"},
		map[string]any{"session_id": 5, "validity_seconds": 10},
		map[string]any{"session_id": "x", "validity_seconds": 1e12},
		map[string]any{"session_id": "a\nb", "validity_seconds": 10},
	} {
		e.expect(e.admin("POST", "/v1/session-blacklist", bad), 400)
	}
}

func TestInternalConnections(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.signup("ann", "acme")
	bob := e.signup("bob", "acme")
	zed := e.signup("zed", "zeta")
	list := func(q string) []map[string]any {
		t.Helper()
		var out []map[string]any
		e.expect(e.admin("GET", "/v1/connections"+q, nil), 200).json(t, &out)
		return out
	}
	if l := list(""); len(l) != 0 {
		t.Fatalf("connections before any stream: %v", l)
	}
	a1 := e.openStream("/sse", ann.bearer(), nil)
	e.openStream("/events/acme?token="+ann.token, "", nil)
	e.openStream("/sse", bob.bearer(), nil)
	e.openStream("/sse", zed.bearer(), nil)
	if l := list(""); len(l) != 4 {
		t.Fatalf("all connections: %v", l)
	}
	if l := list("?tenant_id=acme"); len(l) != 3 {
		t.Fatalf("acme's connections: %v", l)
	}
	l := list("?tenant_id=acme&user=ann")
	if len(l) != 2 {
		t.Fatalf("ann's connections: %v", l)
	}
	c := l[0]
	if c["transport"] != "sse" || c["user"] != ann.id || c["username"] != "ann" || c["tenant_id"] != "acme" ||
		c["session"] != jti(t, ann.token) || c["since"] != float64(e.clock.Now().Unix()) ||
		!strings.HasPrefix(fmt.Sprint(c["remote"]), "127.0.0.1:") || c["conn"] == nil {
		t.Fatalf("connection %v", c)
	}
	if l2 := list("?user=" + ann.id); len(l2) != 2 {
		t.Fatalf("by id: %v", l2)
	}
	e.expect(e.admin("GET", "/v1/connections?tenant_id=zeta&user=ann", nil), 404)
	// A closed stream is forgotten.
	a1.close()
	waitFor(t, "the closed stream to be forgotten", func() bool {
		// A detached stream notices its client at its next write.
		e.admin("POST", "/v1/messages", map[string]any{"tenant_id": "acme", "user": "ann", "event": "poke", "data": 1})
		return len(list("?user=ann")) == 1
	})
}

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

func TestReadiness(t *testing.T) {
	var listening atomic.Bool
	e := newEnv(t, func(c *httpbridge.Config) {
		c.Ready = func() error {
			if !listening.Load() {
				return errors.New("a listener is down")
			}
			return nil
		}
	})
	e.expect(e.do("GET", "/readyz", "", nil), 503)
	e.expect(e.do("GET", e.iurl+"/readyz", "", nil), 503)
	e.expect(e.do("GET", "/healthz", "", nil), 200)
	listening.Store(true)
	e.expect(e.do("GET", "/readyz", "", nil), 200)
	e.expect(e.do("HEAD", e.iurl+"/readyz", "", nil), 200)
	// Shutting down: not ready.
	e.srv.Close()
	e.expect(e.do("GET", "/readyz", "", nil), 503)
	e.expect(e.do("GET", e.iurl+"/readyz", "", nil), 503)
}
