package httpbridge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge"
)

func TestPublicTenants(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.PublicTenants = []string{"news"} })
	ann := e.signup("ann", "news")
	bob := e.signup("bob", "private")
	e.insert(ann, map[string]any{"event": "headline", "data": map[string]string{"t": "one"}})
	e.insert(bob, map[string]any{"event": "secret", "data": 1})

	st := e.openStream("/public/events/news", "", nil)
	m := st.next(t)
	if m.event != "headline" || strings.Contains(m.data, "user_id") || strings.Contains(m.data, ann.id) || !strings.Contains(m.data, `"t"`) {
		t.Fatalf("state message %+v", m)
	}
	rec := m.record(t)
	if rec.TenantID != "news" || rec.Seq == 0 || m.id == "" {
		t.Fatalf("record %+v id %q", rec, m.id)
	}
	// Live publications, without user_id; no ephemeral messages.
	e.expect(e.admin("POST", "/v1/messages", map[string]any{"tenant_id": "news", "event": "psst", "data": 1}), 202)
	e.insert(ann, map[string]any{"event": "headline", "data": map[string]string{"t": "two"}})
	m = st.next(t)
	if m.event != "headline" || strings.Contains(m.data, "user_id") || !strings.Contains(m.data, "two") {
		t.Fatalf("live message %+v", m)
	}
	// Resume works anonymously too.
	st2 := e.openStream("/public/events/news", "", map[string]string{"Last-Event-ID": "0"})
	for _, want := range []string{"one", "two"} {
		if m := st2.next(t); !strings.Contains(m.data, want) || strings.Contains(m.data, "user_id") {
			t.Fatalf("resumed %+v, want %s", m, want)
		}
	}
	// ?format=data too.
	st3 := e.openStream("/public/events/news?format=data", "", nil)
	if m := st3.next(t); m.data != `{"t":"one"}` { // the state: one per collection
		t.Fatalf("data only: %+v", m)
	}

	// Every other tenant: 404, also with credentials; nothing writable anonymously.
	e.expect(e.do("GET", "/public/events/private", "", nil), 404)
	e.expect(e.do("GET", "/public/events/private", bob.bearer(), nil), 404)
	e.expect(e.do("GET", "/public/events/nobody", "", nil), 404)
	e.expect(e.do("POST", "/insert", "", map[string]any{"tenant_id": "news", "event": "x", "data": 1}), 401)
	e.expect(e.do("POST", "/public/events/news", "", nil), 405)

	// The admin route opens a tenant, durably; closing it ends its anonymous streams.
	e.expect(e.do("POST", "/tenant_settings", "", map[string]any{"admin_token": "wrong", "tenant_id": "private", "public": true}), 401)
	e.expect(e.do("POST", "/tenant_settings", "", map[string]any{"admin_token": adminToken, "tenant_id": "private"}), 400)
	e.expect(e.do("POST", "/tenant_settings", "", map[string]any{"admin_token": adminToken, "tenant_id": "private", "public": true}), 200)
	sp := e.openStream("/public/events/private", "", nil)
	if m := sp.next(t); m.event != "secret" || strings.Contains(m.data, "user_id") {
		t.Fatalf("opened tenant %+v", m)
	}
	e.restart()
	sp = e.openStream("/public/events/private", "", nil)
	sp.next(t)
	e.expect(e.do("POST", "/tenant_settings", "", map[string]any{"admin_token": adminToken, "tenant_id": "private", "public": false}), 200)
	sp.ended(t)
	e.expect(e.do("GET", "/public/events/private", "", nil), 404)
	e.restart()
	e.expect(e.do("GET", "/public/events/private", "", nil), 404)
}

func TestDefaultTenant(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.DefaultTenant = "main" })
	// No tenant at sign-up: the default one.
	e.expect(e.do("POST", "/users", "", map[string]any{"username": "ann", "password": "pw-ann"}), 201)
	ann := e.login("ann")
	var v map[string]any
	e.expect(e.do("GET", "/verify", ann.bearer(), nil), 200).json(t, &v)
	if v["tenant_id"] != "main" {
		t.Fatalf("verify %v", v)
	}
	e.insert(ann, map[string]any{"event": "hello", "data": 1})
	// Not public: GET /events without credentials is 401; with them, the caller's stream.
	e.expect(e.do("GET", "/events", "", nil), 401)
	if m := e.openStream("/events", ann.bearer(), nil).next(t); m.event != "hello" || !strings.Contains(m.data, "user_id") {
		t.Fatalf("authenticated /events %+v", m)
	}
	e.expect(e.do("POST", "/tenant_settings", "", map[string]any{"admin_token": adminToken, "tenant_id": "main", "public": true}), 200)
	st := e.openStream("/events", "", nil)
	if m := st.next(t); m.event != "hello" || strings.Contains(m.data, "user_id") {
		t.Fatalf("anonymous /events %+v", m)
	}
	st.quiet(t, 20*time.Millisecond)

	// Without a default tenant, tenant_id stays required.
	e2 := newEnv(t, nil)
	e2.expect(e2.do("POST", "/users", "", map[string]any{"username": "bob", "password": "pw"}), 400)
	e2.expect(e2.do("GET", "/events", "", nil), 401)
}

func TestBadTenantConfig(t *testing.T) {
	for _, mod := range []func(*httpbridge.Config){
		func(c *httpbridge.Config) { c.PublicTenants = []string{"ok", ""} },
		func(c *httpbridge.Config) { c.DefaultTenant = "tab\there" },
	} {
		cfg := testConfig(t.TempDir(), newTestClock())
		mod(&cfg)
		if srv, err := httpbridge.New(nil, cfg); err == nil {
			srv.Close()
			t.Fatalf("New accepted %+v %q", cfg.PublicTenants, cfg.DefaultTenant)
		} else if !strings.Contains(err.Error(), "tenant") {
			t.Fatalf("error %v does not name the tenant", err)
		}
	}
}
