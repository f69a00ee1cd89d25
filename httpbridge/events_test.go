package httpbridge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rtbus/rtbus/httpbridge"
)

func TestInsertQueryCancel(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	now := e.clock.Now().Unix()

	a := e.insert(u, map[string]any{"event": "temp", "data": map[string]any{"c": 21.5}, "collection_id": "room1"})
	if !a.Published || a.Seq != 1 || a.Timestamp != now || a.TenantID != "acme" || a.UserID != u.id || len(a.ID) != 36 {
		t.Fatalf("inserted record: %+v", a)
	}
	// Equal timestamps keep insertion order; an earlier timestamp sorts first.
	b := e.insert(u, map[string]any{"event": "temp", "data": 22, "collection_id": "room1", "tenant_id": "acme"})
	c := e.insert(u, map[string]any{"event": "temp", "data": 20, "collection_id": "room1", "timestamp": now - 100})
	future := e.insert(u, map[string]any{"event": "temp", "data": 30, "collection_id": "room1", "timestamp": now + 60})
	if future.Published || future.Seq != 0 {
		t.Fatalf("future event published at insert: %+v", future)
	}
	other := e.insert(u, map[string]any{"event": "note", "data": "x"})
	if len(other.CollectionID) != 36 {
		t.Fatalf("collection_id not defaulted to a UUID: %q", other.CollectionID)
	}

	var col struct{ Events []record }
	e.expect(e.do("GET", "/collections/room1", u.bearer(), nil), 200).json(t, &col)
	var ids []string
	for _, r := range col.Events {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != strings.Join([]string{c.ID, a.ID, b.ID}, ",") {
		t.Fatalf("collection order %v, want %v", ids, []string{c.ID, a.ID, b.ID})
	}
	e.expect(e.do("GET", "/collections/none", u.bearer(), nil), 200).json(t, &col)
	if col.Events == nil || len(col.Events) != 0 {
		t.Fatalf("empty collection: %+v", col)
	}

	var ue struct{ Info, Events []record }
	e.expect(e.do("GET", "/user_events", u.bearer(), nil), 200).json(t, &ue)
	if len(ue.Events) != 5 || len(ue.Info) != 0 {
		t.Fatalf("user_events: %d events, %d info", len(ue.Events), len(ue.Info))
	}

	// Cancel: a scheduled event once; never a published one; unknown ids are 404.
	e.expect(e.do("GET", "/cancel/"+a.ID, u.bearer(), nil), 409)
	var cr struct{ Event record }
	e.expect(e.do("POST", "/cancel/"+future.ID, u.bearer(), nil), 200).json(t, &cr)
	if !cr.Event.Cancelled || cr.Event.ID != future.ID {
		t.Fatalf("cancelled record: %+v", cr.Event)
	}
	e.expect(e.do("GET", "/cancel/"+future.ID, u.bearer(), nil), 409)
	e.expect(e.do("GET", "/cancel/no-such-id", u.bearer(), nil), 404)
	e.expect(e.do("DELETE", "/cancel/"+future.ID, u.bearer(), nil), 405)
	e.expect(e.do("GET", "/cancel/"+future.ID, "", nil), 401)

	for name, body := range map[string]any{
		"no event":     map[string]any{"data": 1},
		"no data":      map[string]any{"event": "x"},
		"long name":    map[string]any{"event": strings.Repeat("n", 257), "data": 1},
		"control char": map[string]any{"event": "a\nb", "data": 1},
		"bad stamp":    map[string]any{"event": "x", "data": 1, "timestamp": 1.5},
		"neg stamp":    map[string]any{"event": "x", "data": 1, "timestamp": -1},
		"str stamp":    map[string]any{"event": "x", "data": 1, "timestamp": "soon"},
		"array":        []int{1},
	} {
		t.Run(name, func(t *testing.T) { e.expect(e.do("POST", "/insert", u.bearer(), body), 400) })
	}
	e.expect(e.do("POST", "/insert", u.bearer(), `{"event":"x","data":{"a":}}`), 400)
	for _, trailing := range []string{`}`, `]`, `{}`, "}\\\x8e"} {
		e.expect(e.do("POST", "/insert", u.bearer(), `{"event":"x","data":1}`+trailing), 400)
	}
	if msg := e.expect(e.do("POST", "/insert", u.bearer(), `{"event":"x","data":1}}`), 400).field(t, "error"); !strings.Contains(msg, "after its JSON object") {
		t.Errorf("trailing brace: error %q does not say what is wrong", msg)
	}
	e.expect(e.do("POST", "/insert", "", map[string]any{"event": "x", "data": 1}), 401)
	e.expect(e.do("GET", "/insert", u.bearer(), nil), 405)
	e.expect(e.do("GET", "/nowhere", "", nil), 404)
}

// TestTenantIsolation: a user of tenant B can read, stream, cancel or insert nothing of A.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t, nil)
	a := e.signup("ann", "A")
	b := e.signup("bob", "B")
	stB := e.openStream("/sse", b.bearer(), nil)

	pub := e.insert(a, map[string]any{"event": "secret", "data": "a-only", "collection_id": "shared"})
	sched := e.insert(a, map[string]any{"event": "later", "data": 1, "timestamp": e.clock.Now().Unix() + 100})

	// Broker answered 200 with an error body; we answer 403.
	e.expect(e.do("POST", "/insert", b.bearer(), map[string]any{"event": "x", "data": 1, "tenant_id": "A"}), 403)
	var col struct{ Events []record }
	e.expect(e.do("GET", "/collections/shared", b.bearer(), nil), 200).json(t, &col)
	if len(col.Events) != 0 {
		t.Fatalf("B sees A's collection: %+v", col.Events)
	}
	// Broker crashed or answered 200 here.
	e.expect(e.do("GET", "/cancel/"+sched.ID, b.bearer(), nil), 404)
	e.expect(e.do("GET", "/cancel/"+pub.ID, b.bearer(), nil), 404)
	// Broker let anyone stream any tenant.
	r := e.do("GET", "/events/A", b.bearer(), nil)
	e.expect(r, 403)
	r = e.do("GET", "/events/A?token="+b.token, "", nil)
	e.expect(r, 403)

	// B's stream got nothing of A's (the insert B made in its own tenant proves it is live).
	e.insert(b, map[string]any{"event": "mine", "data": 1})
	if m := stB.next(t); m.event != "mine" {
		t.Fatalf("B's stream got %+v", m)
	}
	// A's scheduled event is still there for A.
	e.expect(e.do("GET", "/cancel/"+sched.ID, a.bearer(), nil), 200)
}

func TestCORSAndLimits(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.MaxBody = 1000 })
	req, _ := http.NewRequest("OPTIONS", e.url+"/insert", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, err := e.cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Idempotency-Key") ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}

	big := `{"username":"` + strings.Repeat("x", 2000) + `"}`
	e.expect(e.do("POST", "/login", "", big), 413)

	e2 := newEnv(t, func(c *httpbridge.Config) { c.Origins = []string{"https://good.example"} })
	for origin, want := range map[string]int{"https://good.example": 204, "https://evil.example": 403} {
		req, _ := http.NewRequest("OPTIONS", e2.url+"/login", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := e2.cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("preflight from %s: %d, want %d", origin, resp.StatusCode, want)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); (want == 204) != (got == origin) {
			t.Fatalf("preflight from %s: Allow-Origin %q", origin, got)
		}
	}
	// A simple request from an allowed origin is answered with the header.
	req, _ = http.NewRequest("POST", e2.url+"/login", strings.NewReader(`{}`))
	req.Header.Set("Origin", "https://good.example")
	resp, err = e2.cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://good.example" {
		t.Fatalf("no CORS header on a simple request: %v", resp.Header)
	}
}
