package httpbridge_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge"
)

// TestTransports runs the same scenarios over SSE, WebSocket and long-polling, each against
// a real listener and a real store.
func TestTransports(t *testing.T) {
	scenarios := []struct {
		name string
		cfg  func(*httpbridge.Config)
		run  func(t *testing.T, e *env, tr streamTransport, other streamTransport)
	}{
		{"StateLiveResume", nil, scStateLiveResume},
		{"Filters", nil, scFilters},
		{"Ephemeral", nil, scEphemeral},
		{"Watchers", nil, scWatchers},
		{"Credentials", nil, scCredentials},
		{"Cursor", nil, scCursor},
		{"Revoked", nil, scRevoked},
		{"Gateway", nil, scGateway},
		{"KeepAlive", func(c *httpbridge.Config) { c.KeepAlive = 100 * time.Millisecond }, scKeepAlive},
		{"SlowClient", func(c *httpbridge.Config) { c.StreamQueue = 4 }, scSlow},
	}
	for i, tr := range streamTransports {
		other := streamTransports[(i+1)%len(streamTransports)]
		t.Run(tr.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					e := newEnv(t, sc.cfg)
					sc.run(t, e, tr, other)
				})
			}
		})
	}
}

func scStateLiveResume(t *testing.T, e *env, tr streamTransport, _ streamTransport) {
	u := e.signup("ann", "acme")
	now := e.clock.Now().Unix()
	a := e.insert(u, map[string]any{"event": "temp", "data": 1, "collection_id": "r1", "timestamp": now - 10})
	b := e.insert(u, map[string]any{"event": "temp", "data": 2, "collection_id": "r2", "timestamp": now - 5})
	c := e.insert(u, map[string]any{"event": "note", "data": "é: ok\nid:7", "collection_id": "r1"})
	e.insert(u, map[string]any{"event": "temp", "data": 99, "collection_id": "r1", "timestamp": now + 50}) // not yet

	st := mustOpen(t, tr, e, "/acme", u.bearer(), nil)
	for i, w := range []record{a, b, c} {
		m := st.next(t)
		r := m.record(t)
		if r.ID != w.ID || m.event != w.Event {
			t.Fatalf("state message %d: %+v, want %s", i, m, w.ID)
		}
		if (i == 2) != (m.id != "") {
			t.Fatalf("state message %d has id %q", i, m.id)
		}
		var text string
		jsonUnmarshalBytes(r.Data, &text)
		if i == 2 && (m.id != "3" || text != "é: ok\nid:7") {
			t.Fatalf("last state message %+v, data %s", m, r.Data)
		}
	}
	d := e.insert(u, map[string]any{"event": "temp", "data": 5, "collection_id": "r1"})
	if m := st.next(t); m.id != "4" || m.record(t).ID != d.ID {
		t.Fatalf("live message %+v", m)
	}
	st.close()

	// Away: two publications; resuming from 4 (query, then header) gets exactly them.
	f := e.insert(u, map[string]any{"event": "temp", "data": 6, "collection_id": "r1"})
	g := e.insert(u, map[string]any{"event": "temp", "data": 7, "collection_id": "r2"})
	for _, how := range []string{"query", "header"} {
		path, hdr := "?last_event_id=4", map[string]string(nil)
		if how == "header" {
			path, hdr = "", map[string]string{"Last-Event-ID": "4"}
		}
		rs := mustOpen(t, tr, e, path, u.bearer(), hdr)
		for _, w := range []record{f, g} {
			if m := rs.next(t); m.id != strconv.FormatUint(w.Seq, 10) || m.record(t).ID != w.ID {
				t.Fatalf("%s resume: %+v, want %s", how, m, w.ID)
			}
		}
		rs.quiet(t, 100*time.Millisecond)
		rs.close()
	}
	// ?format=data sends the data only.
	ds := mustOpen(t, tr, e, "?format=data&last_event_id=5", u.bearer(), nil)
	if m := ds.next(t); m.data != "7" || m.event != "temp" || m.id != "6" {
		t.Fatalf("format=data: %+v", m)
	}
}

func scFilters(t *testing.T, e *env, tr streamTransport, _ streamTransport) {
	u := e.signup("ann", "acme")
	e.insert(u, map[string]any{"event": "temp", "data": 1, "collection_id": "r1"})
	e.insert(u, map[string]any{"event": "temp", "data": 2, "collection_id": "r2"})
	e.insert(u, map[string]any{"event": "note", "data": 3, "collection_id": "r1"})

	// State: only temp in r1; its id is the tenant's sequence all the same.
	st := mustOpen(t, tr, e, "?events=temp&collections=r1,r9", u.bearer(), nil)
	if m := st.next(t); m.data == "" || m.record(t).Data == nil || string(m.record(t).Data) != "1" || m.id != "3" {
		t.Fatalf("filtered state %+v", m)
	}
	// Live: only temp in r1 passes; an ephemeral message only by its name.
	e.insert(u, map[string]any{"event": "note", "data": 4, "collection_id": "r1"})
	e.insert(u, map[string]any{"event": "temp", "data": 5, "collection_id": "r2"})
	push(t, e, "rtbus/http/acme/push", `{"event":"hello","data":1}`)
	push(t, e, "rtbus/http/acme/push", `{"event":"temp","data":"ephemeral"}`)
	if m := st.next(t); m.event != "temp" || m.id != "" || m.data != `"ephemeral"` {
		t.Fatalf("filtered ephemeral %+v", m)
	}
	w := e.insert(u, map[string]any{"event": "temp", "data": 6, "collection_id": "r1"})
	if m := st.next(t); m.record(t).ID != w.ID || m.id != "6" {
		t.Fatalf("filtered live %+v", m)
	}
	st.quiet(t, 100*time.Millisecond)
	st.close()
	// Resume: only note events, from the start.
	rs := mustOpen(t, tr, e, "?events=note&last_event_id=0", u.bearer(), nil)
	for _, want := range []string{"3", "4"} {
		if m := rs.next(t); m.id != want || m.event != "note" {
			t.Fatalf("filtered resume %+v, want id %s", m, want)
		}
	}
	rs.quiet(t, 100*time.Millisecond)
}

var pushes int

// push publishes on a bus push topic as a plugin would.
func push(t *testing.T, e *env, topic, payload string) {
	t.Helper()
	pushes++
	c, err := e.bus.RegisterClient("pusher-" + strconv.Itoa(pushes))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Publish(bus.QoSProcessed, topic, []byte(payload)); err != nil {
		t.Fatal(err)
	}
}

// ready opens a stream and waits for its state (one event), so that it is registered.
func ready(t *testing.T, tr streamTransport, e *env, path string, u user) *tclient {
	t.Helper()
	auth := ""
	if u.token != "" {
		auth = u.bearer()
	}
	c := mustOpen(t, tr, e, path, auth, nil)
	c.next(t)
	return c
}

func scEphemeral(t *testing.T, e *env, tr, other streamTransport) {
	ann := e.signup("ann", "acme")
	bob := e.signup("bob", "acme")
	zed := e.signup("zed", "zzz")
	e.insert(ann, map[string]any{"event": "x", "data": 1})
	e.insert(zed, map[string]any{"event": "x", "data": 1})
	// Ann on two devices, on two streamTransports; Bob; Zed of another tenant.
	a1 := ready(t, tr, e, "", ann)
	a2 := ready(t, other, e, "", ann)
	b := ready(t, tr, e, "", bob)
	z := ready(t, tr, e, "", zed)

	push(t, e, "rtbus/http/acme/push", `{"event":"hello","data":{"to":"all"}}`)
	push(t, e, "rtbus/http/acme/push/"+ann.id, `{"event":"hello","data":{"to":"ann: é"}}`)
	for _, c := range []*tclient{a1, a2, b} {
		if m := c.next(t); m.event != "hello" || m.id != "" || !strings.Contains(m.data, "all") {
			t.Fatalf("tenant push: %+v", m)
		}
	}
	for _, c := range []*tclient{a1, a2} {
		m := c.next(t)
		var d struct{ To string }
		if err := jsonUnmarshal(m.data, &d); err != nil || d.To != "ann: é" || m.id != "" {
			t.Fatalf("user push: %+v", m)
		}
	}
	b.quiet(t, 100*time.Millisecond)
	z.quiet(t, 10*time.Millisecond)
}

func scWatchers(t *testing.T, e *env, tr, _ streamTransport) {
	r := e.expect(e.do("POST", "/users", "", map[string]any{"username": "boss", "password": "pw-boss", "tenant_id": "acme", "roles": []string{"admin"}, "admin_token": adminToken}), 201)
	boss := user{id: r.field(t, "id"), name: "boss", tenant: "acme"}
	boss.token = e.expect(e.do("POST", "/login", "", map[string]string{"username": "boss", "password": "pw-boss"}), 200).field(t, "jwt")
	ann := e.signup("ann", "acme")
	bob := e.signup("bob", "acme")
	e.signup("zed", "zzz")
	e.insert(ann, map[string]any{"event": "x", "data": 1})

	w := ready(t, tr, e, "?users=ann,"+bob.id, boss)
	self := ready(t, tr, e, "?users=bob", bob) // a user may name itself
	push(t, e, "rtbus/http/acme/push/"+ann.id, `{"event":"dm","data":"to ann"}`)
	push(t, e, "rtbus/http/acme/push/"+bob.id, `{"event":"dm","data":"to bob"}`)
	if m := w.next(t); m.data != `"to ann"` {
		t.Fatalf("watcher got %+v", m)
	}
	if m := w.next(t); m.data != `"to bob"` {
		t.Fatalf("watcher got %+v", m)
	}
	if m := self.next(t); m.data != `"to bob"` {
		t.Fatalf("bob got %+v", m)
	}
	self.quiet(t, 100*time.Millisecond)

	refused(t, tr, e, "?users=ann", bob.bearer(), nil, http.StatusForbidden)  // not privileged
	refused(t, tr, e, "?users=zed", boss.bearer(), nil, http.StatusForbidden) // another tenant's user
	refused(t, tr, e, "?users=nobody", boss.bearer(), nil, http.StatusForbidden)
	refused(t, tr, e, "/zzz", boss.bearer(), nil, http.StatusForbidden) // another tenant
}

func scCredentials(t *testing.T, e *env, tr, _ streamTransport) {
	u := e.signup("ann", "acme")
	e.insert(u, map[string]any{"event": "x", "data": 1})
	refused(t, tr, e, "", "", nil, http.StatusUnauthorized)
	refused(t, tr, e, "?token=bad", "", nil, http.StatusUnauthorized)
	ready(t, tr, e, "?token="+url.QueryEscape(u.token), user{}).close()
	ready(t, tr, e, "/acme", u).close()

	// The cookie of POST /login?cookie=1: HttpOnly, SameSite=Strict, on stream routes only.
	resp, err := e.cl.Post(e.url+"/login?cookie=1", "application/json", strings.NewReader(`{"username":"ann","password":"pw-ann"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "rtbus_token" {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Value == "" {
		t.Fatalf("login cookie %+v", ck)
	}
	cookie := map[string]string{"Cookie": "rtbus_token=" + ck.Value}
	c := mustOpen(t, tr, e, "", "", cookie)
	c.next(t)
	c.close()
	req, _ := http.NewRequest("POST", e.url+"/insert", strings.NewReader(`{"event":"x","data":1}`))
	req.Header.Set("Cookie", "rtbus_token="+ck.Value)
	resp, err = e.cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("insert with the cookie only: %d, want 401", resp.StatusCode)
	}
}

func scCursor(t *testing.T, e *env, tr, _ streamTransport) {
	u := e.signup("ann", "acme")
	e.insert(u, map[string]any{"event": "x", "data": 1})
	for _, bad := range []string{"?last_event_id=abc", "?last_event_id=-1", "?last_event_id=1e3", "?events=" + strings.Repeat("a,", 100), "?format=xml", "?wait=x"} {
		refused(t, tr, e, bad, u.bearer(), nil, http.StatusBadRequest)
	}
	refused(t, tr, e, "", u.bearer(), map[string]string{"Last-Event-ID": "x1"}, http.StatusBadRequest)
	// A cursor ahead of the log: resync, then the state.
	c := mustOpen(t, tr, e, "?last_event_id=99", u.bearer(), nil)
	if m := c.next(t); m.event != "resync" || m.id != "" {
		t.Fatalf("want resync, got %+v", m)
	}
	if m := c.next(t); m.event != "x" || m.id != "1" {
		t.Fatalf("state after resync %+v", m)
	}
}

func scRevoked(t *testing.T, e *env, tr, _ streamTransport) {
	u := e.signup("ann", "acme")
	e.insert(u, map[string]any{"event": "x", "data": 1})
	c := ready(t, tr, e, "", u)
	e.expect(e.do("POST", "/revoke_user", "", map[string]string{"admin_token": adminToken, "username": "ann"}), 200)
	ms := c.ended(t)
	switch tr.name {
	case "sse":
		if len(ms) != 1 || ms[0].event != "session_killed" {
			t.Fatalf("sse end: %+v", ms)
		}
	case "ws":
		if got := c.code.Load(); got != 4001 {
			t.Fatalf("ws close code %d, want 4001", got)
		}
	case "poll":
		if got := c.status.Load(); got != http.StatusUnauthorized {
			t.Fatalf("poll status %d, want 401", got)
		}
	}
}

func scKeepAlive(t *testing.T, e *env, tr, _ streamTransport) {
	u := e.signup("ann", "acme")
	c := mustOpen(t, tr, e, "", u.bearer(), nil)
	deadline := time.Now().Add(10 * time.Second)
	for c.beats.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d keep-alives in 10 s", c.beats.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.quiet(t, 10*time.Millisecond)
}

var jsonUnmarshal = func(s string, v any) error { return jsonUnmarshalBytes([]byte(s), v) }

var _ = context.Background

// scGateway: the internal API over every transport: a push reaches a user's devices on two
// transports, presence names each transport, and a blacklisted session's stream ends with the
// transport's session_killed.
func scGateway(t *testing.T, e *env, tr, other streamTransport) {
	ann := e.signup("ann", "acme")
	ann2 := e.login("ann")
	e.insert(ann, map[string]any{"event": "x", "data": 1})
	a1 := ready(t, tr, e, "", ann)
	a2 := ready(t, other, e, "", ann2)
	var out struct{ Delivered int }
	e.expect(e.admin("POST", "/v1/messages", map[string]any{"tenant_id": "acme", "user": "ann", "event": "ping", "data": 1}), 202).json(t, &out)
	if out.Delivered != 2 {
		t.Fatalf("delivered %d, want 2", out.Delivered)
	}
	for _, c := range []*tclient{a1, a2} {
		if m := c.next(t); m.event != "ping" || m.id != "" {
			t.Fatalf("push: %+v", m)
		}
	}
	var conns []struct{ Transport, Session string }
	e.expect(e.admin("GET", "/v1/connections?user=ann", nil), 200).json(t, &conns)
	seen := map[string]string{}
	for _, c := range conns {
		seen[c.Session] = c.Transport
	}
	if len(conns) != 2 || seen[jti(t, ann.token)] != tr.name || seen[jti(t, ann2.token)] != other.name {
		t.Fatalf("presence %+v, want %s and %s", conns, tr.name, other.name)
	}
	e.expect(e.admin("POST", "/v1/session-blacklist", map[string]any{"session_id": jti(t, ann.token), "validity_seconds": 60}), 201)
	start := time.Now()
	ms := a1.ended(t)
	// "At once": well before a poll's 25 s wait or a keep-alive would end it, with room for
	// a loaded machine's scheduling (a 1 s bound failed at load 15).
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("killed stream ended after %v", d)
	}
	switch tr.name {
	case "sse":
		if len(ms) != 1 || ms[0].event != "session_killed" {
			t.Fatalf("sse end: %+v", ms)
		}
	case "ws":
		if got := a1.code.Load(); got != 4001 {
			t.Fatalf("ws close code %d, want 4001", got)
		}
	case "poll":
		if got := a1.status.Load(); got != http.StatusUnauthorized {
			t.Fatalf("poll status %d, want 401", got)
		}
	}
	if _, status, _ := tr.open(e, "", ann.bearer(), nil); status != http.StatusUnauthorized {
		t.Fatalf("killed session reopening: %d", status)
	}
	waitFor(t, "presence to forget the killed stream", func() bool {
		e.expect(e.admin("GET", "/v1/connections?user=ann", nil), 200).json(t, &conns)
		return len(conns) == 1 && conns[0].Transport == other.name
	})
}
