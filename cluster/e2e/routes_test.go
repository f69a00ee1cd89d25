package e2e

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

// routeScenarios are black-box scenarios of the public HTTP routes, written once and run
// against a single node and against a cluster (TestRoutes). A scenario sends each request to
// the node that makes the point: on a cluster, a user signed up on one node logs in on
// another and streams from a third; on a single node every index is the one node. Scenarios
// share the system, so each makes its own users (names unique to the run).
var routeScenarios = []struct {
	name string
	run  func(t *testing.T, s *system)
}{
	{"signup login verify", scenarioSignup},
	{"insert and read", scenarioInsertRead},
	{"idempotent insert", scenarioIdempotentInsert},
	{"cancel", scenarioCancel},
	{"streams", scenarioStreams},
	{"scheduled publication", scenarioSchedule},
	{"admin routes", scenarioAdmin},
	{"errors", scenarioErrors},
	{"concurrent sign-ups", scenarioConcurrentSignups},
	{"cancel racing the fire", scenarioCancelRace},
}

// uname makes a username unique to this run of the test binary.
func uname(t *testing.T, base string) string {
	return base + "-" + randomHex(4)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func scenarioSignup(t *testing.T, s *system) {
	name := uname(t, "ann")
	r := expect(t, do(t, s.at(0), "POST", "/users", "", map[string]any{"username": name, "password": "secret", "tenant_id": "acme"}), 201)
	id := r.field(t, "id")
	if len(id) != 36 {
		t.Fatalf("id %q is not a UUID", id)
	}
	// The name is taken on every node at once.
	for i := range 3 {
		expect(t, do(t, s.at(i), "POST", "/users", "", map[string]any{"username": name, "password": "x", "tenant_id": "other"}), 409)
	}
	for what, body := range map[string]any{
		"no tenant":   map[string]any{"username": uname(t, "bob"), "password": "x"},
		"no password": map[string]any{"username": uname(t, "bob"), "tenant_id": "acme"},
		"colon":       map[string]any{"username": "b:ob", "password": "x", "tenant_id": "acme"},
		"long tenant": map[string]any{"username": uname(t, "bob"), "password": "x", "tenant_id": strings.Repeat("t", 129)},
		"not json":    "not json",
	} {
		if r := do(t, s.at(1), "POST", "/users", "", body); r.code != 400 {
			t.Errorf("signup %s: %d %s, want 400", what, r.code, r.body)
		}
	}
	u := user{id: id, name: name, pass: "secret", tenant: "acme"}
	tok := login(t, s.at(1), u)
	expect(t, do(t, s.at(1), "POST", "/login", "", map[string]string{"username": name, "password": "wrong"}), 401)
	expect(t, do(t, s.at(2), "POST", "/login", "", map[string]string{"username": uname(t, "nobody"), "password": "secret"}), 401)
	expect(t, do(t, s.at(2), "POST", "/login", "", map[string]string{"username": name}), 400)

	// A token from one node is valid on every node.
	for i := range 3 {
		r := expect(t, do(t, s.at(i), "GET", "/verify", "Bearer "+tok, nil), 200)
		if r.field(t, "id") != id || r.field(t, "username") != name || r.field(t, "tenant_id") != "acme" {
			t.Fatalf("verify on %s: %s", s.at(i).name, r.body)
		}
	}
	expect(t, do(t, s.at(2), "GET", "/verify", "", nil), 401)
	expect(t, do(t, s.at(2), "GET", "/verify", "Token abc", nil), 401)
	expect(t, do(t, s.at(2), "GET", "/verify", "Bearer "+tok+"x", nil), 401)
	expect(t, do(t, s.at(0), "GET", "/verify", basic(name, "secret"), nil), 200)
	expect(t, do(t, s.at(0), "GET", "/verify", basic(name, "nope"), nil), 401)
}

// visible waits until node n's collection col (as u sees it) holds want events.
func visible(t *testing.T, n *node, u user, col string, want int) []record {
	t.Helper()
	var out struct{ Events []record }
	eventually(t, 10*time.Second, fmt.Sprintf("%d events of %s on %s", want, col, n.name), func() bool {
		expect(t, do(t, n, "GET", "/collections/"+col, u.bearer(), nil), 200).json(t, &out)
		return len(out.Events) >= want
	})
	return out.Events
}

func scenarioInsertRead(t *testing.T, s *system) {
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme-"+randomHex(4))
	now := time.Now().Unix()
	a := insert(t, s.at(0), u, map[string]any{"event": "temp", "data": map[string]any{"c": 21.5}, "collection_id": "room1"})
	if !a.Published || a.TenantID != u.tenant || a.UserID != u.id || len(a.ID) != 36 || a.Timestamp < now {
		t.Fatalf("inserted record: %+v", a)
	}
	// Read-your-writes on the node that answered.
	var col struct{ Events []record }
	expect(t, do(t, s.at(0), "GET", "/collections/room1", u.bearer(), nil), 200).json(t, &col)
	if len(col.Events) != 1 || col.Events[0].ID != a.ID {
		t.Fatalf("collection right after the insert, same node: %+v", col.Events)
	}
	b := insert(t, s.at(1), u, map[string]any{"event": "temp", "data": 22, "collection_id": "room1", "tenant_id": u.tenant})
	c := insert(t, s.at(2), u, map[string]any{"event": "temp", "data": 20, "collection_id": "room1", "timestamp": now - 100})
	future := insert(t, s.at(0), u, map[string]any{"event": "temp", "data": 30, "collection_id": "room1", "timestamp": now + 600})
	if future.Published {
		t.Fatalf("future event published at insert: %+v", future)
	}
	other := insert(t, s.at(1), u, map[string]any{"event": "note", "data": "x"})
	if len(other.CollectionID) != 36 {
		t.Fatalf("collection_id not defaulted to a UUID: %q", other.CollectionID)
	}
	// Every node holds them all, in timestamp order, then insertion order. The equal
	// timestamps of a and b may differ by a second; c is the oldest either way.
	for i := range 3 {
		got := visible(t, s.at(i), u, "room1", 3)
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if len(ids) != 3 || ids[0] != c.ID || ids[1] != a.ID || ids[2] != b.ID {
			t.Fatalf("collection on %s: %v, want %v", s.at(i).name, ids, []string{c.ID, a.ID, b.ID})
		}
	}
	expect(t, do(t, s.at(2), "GET", "/collections/none", u.bearer(), nil), 200).json(t, &col)
	if col.Events == nil || len(col.Events) != 0 {
		t.Fatalf("empty collection: %s", do(t, s.at(2), "GET", "/collections/none", u.bearer(), nil).body)
	}
	var ue struct{ Info, Events []record }
	eventually(t, 10*time.Second, "user_events on "+s.at(2).name, func() bool {
		expect(t, do(t, s.at(2), "GET", "/user_events", u.bearer(), nil), 200).json(t, &ue)
		return len(ue.Events) >= 5
	})
	if len(ue.Events) != 5 || len(ue.Info) != 0 {
		t.Fatalf("user_events: %d events, %d info", len(ue.Events), len(ue.Info))
	}

	// Tenants never see each other.
	v := signup(t, s.at(1), s.at(2), uname(t, "vic"), "other-"+randomHex(4))
	expect(t, do(t, s.at(2), "POST", "/insert", v.bearer(), map[string]any{"event": "x", "data": 1, "tenant_id": u.tenant}), 403)
	expect(t, do(t, s.at(0), "GET", "/collections/room1", v.bearer(), nil), 200).json(t, &col)
	if len(col.Events) != 0 {
		t.Fatalf("another tenant sees the collection: %+v", col.Events)
	}
	for what, body := range map[string]any{
		"no event":  map[string]any{"data": 1},
		"no data":   map[string]any{"event": "x"},
		"long name": map[string]any{"event": strings.Repeat("n", 257), "data": 1},
		"bad stamp": map[string]any{"event": "x", "data": 1, "timestamp": 1.5},
		"array":     []int{1},
		"bad json":  `{"event":"x","data":{"a":}}`,
	} {
		if r := do(t, s.at(2), "POST", "/insert", u.bearer(), body); r.code != 400 {
			t.Errorf("insert %s: %d %s, want 400", what, r.code, r.body)
		}
	}
	expect(t, do(t, s.at(1), "POST", "/insert", "", map[string]any{"event": "x", "data": 1}), 401)
}

func scenarioCancel(t *testing.T, s *system) {
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme-"+randomHex(4))
	v := signup(t, s.at(0), s.at(2), uname(t, "vic"), "other-"+randomHex(4))
	now := time.Now().Unix()
	pub := insert(t, s.at(0), u, map[string]any{"event": "now", "data": 1})
	future := insert(t, s.at(0), u, map[string]any{"event": "later", "data": 2, "timestamp": now + 600})

	// Cancelled on another node than the one that took the insert, once that node has it.
	var cr struct{ Event record }
	eventually(t, 10*time.Second, "the future event on "+s.at(1).name, func() bool {
		r := do(t, s.at(1), "POST", "/cancel/"+future.ID, u.bearer(), nil)
		if r.code == 404 {
			return false
		}
		expect(t, r, 200).json(t, &cr)
		return true
	})
	if !cr.Event.Cancelled || cr.Event.ID != future.ID || cr.Event.Published {
		t.Fatalf("cancelled record: %+v", cr.Event)
	}
	// Already cancelled, or already published: 409 on every node.
	for i := range 3 {
		eventually(t, 10*time.Second, "the cancel on "+s.at(i).name, func() bool {
			r := do(t, s.at(i), "GET", "/cancel/"+future.ID, u.bearer(), nil)
			return r.code == 409
		})
		eventually(t, 10*time.Second, "the publication on "+s.at(i).name, func() bool {
			return do(t, s.at(i), "GET", "/cancel/"+pub.ID, u.bearer(), nil).code == 409
		})
	}
	expect(t, do(t, s.at(2), "GET", "/cancel/no-such-id", u.bearer(), nil), 404)
	expect(t, do(t, s.at(2), "GET", "/cancel/"+pub.ID, v.bearer(), nil), 404)
	expect(t, do(t, s.at(2), "GET", "/cancel/"+pub.ID, "", nil), 401)
	expect(t, do(t, s.at(2), "DELETE", "/cancel/"+pub.ID, u.bearer(), nil), 405)

	// The cancelled event never shows.
	var col struct{ Events []record }
	expect(t, do(t, s.at(2), "GET", "/collections/"+future.CollectionID, u.bearer(), nil), 200).json(t, &col)
	if len(col.Events) != 0 {
		t.Fatalf("a cancelled event is in its collection: %+v", col.Events)
	}
}

// scenarioStreams: on each transport, a stream opened on one node gets the state, then what
// is inserted on another node; a stream resumed on a third node with its cursor gets exactly
// what it missed.
func scenarioStreams(t *testing.T, s *system) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme-"+randomHex(4))
			v := signup(t, s.at(0), s.at(1), uname(t, "vic"), "other-"+randomHex(4))
			now := time.Now().Unix()
			a := insert(t, s.at(0), u, map[string]any{"event": "temp", "data": 1, "collection_id": "r1", "timestamp": now - 10})
			b := insert(t, s.at(0), u, map[string]any{"event": "temp", "data": 2, "collection_id": "r1", "timestamp": now - 5})
			c := insert(t, s.at(0), u, map[string]any{"event": "note", "data": "é: ok", "collection_id": "r1"})
			insert(t, s.at(0), u, map[string]any{"event": "temp", "data": 99, "collection_id": "r1", "timestamp": now + 600})
			visible(t, s.at(1), u, "r1", 3)
			_ = a

			// State: the latest published event per (name, collection), oldest first.
			st := mustOpen(t, tr, s.at(1), "/"+u.tenant, u.token, "")
			for i, w := range []record{b, c} {
				m := st.next(t, 10*time.Second)
				if r := m.record(t); r.ID != w.ID || m.event != w.Event {
					t.Fatalf("state message %d: %s %s, want %s", i, m.event, m.data, w.ID)
				}
			}
			// Live, inserted on another node.
			l1 := insert(t, s.at(2), u, map[string]any{"event": "temp", "data": 5, "collection_id": "r1"})
			if m := st.next(t, 10*time.Second); m.record(t).ID != l1.ID || m.id == "" {
				t.Fatalf("live message %+v, want %s", m, l1.ID)
			}
			eventually(t, 5*time.Second, "the cursor", func() bool { return st.lastID() != "" })
			cursor := st.lastID()
			st.close()

			// Missed while away, resumed on a third node with the cursor from the second.
			l2 := insert(t, s.at(0), u, map[string]any{"event": "temp", "data": 6, "collection_id": "r1"})
			l3 := insert(t, s.at(1), u, map[string]any{"event": "other", "data": 7, "collection_id": "r2"})
			visible(t, s.at(2), u, "r2", 1)
			rs := mustOpen(t, tr, s.at(2), "", u.token, cursor)
			for _, w := range []record{l2, l3} {
				if m := rs.next(t, 10*time.Second); m.record(t).ID != w.ID {
					t.Fatalf("resumed: %+v, want %s", m, w.ID)
				}
			}
			rs.quiet(t, 100*time.Millisecond)

			// Refused: another tenant, no token, a malformed cursor.
			for _, c := range []struct {
				route, token, cursor string
				code                 int
			}{{"/" + u.tenant, v.token, "", 403}, {"", "", "", 401}, {"", "bad", "", 401}, {"", u.token, "x", 400}} {
				if st, code, body := tr.open(s.at(2), c.route, c.token, c.cursor); st != nil || code != c.code {
					if st != nil {
						st.close()
					}
					t.Errorf("stream %q token %q cursor %q: %d %s, want %d", c.route, c.token, c.cursor, code, body, c.code)
				}
			}
		})
	}
}

// scenarioSchedule: an event inserted for two seconds ahead is published once, at its time,
// to streams on every node.
func scenarioSchedule(t *testing.T, s *system) {
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme-"+randomHex(4))
	var sts []*stream
	for i := range len(s.nodes) {
		sts = append(sts, mustOpen(t, transports[0], s.at(i), "", u.token, ""))
	}
	at := time.Now().Unix() + 2
	ev := insert(t, s.at(0), u, map[string]any{"event": "alarm", "data": 1, "timestamp": at})
	if ev.Published {
		t.Fatalf("published at insert: %+v", ev)
	}
	for i, st := range sts {
		m := st.next(t, 15*time.Second)
		if m.record(t).ID != ev.ID || !m.record(t).Published {
			t.Fatalf("stream on %s: %+v", s.at(i).name, m)
		}
		if now := time.Now(); now.Before(time.Unix(at, 0).Add(-time.Second)) {
			t.Fatalf("published at %v, before its time %v", now, time.Unix(at, 0))
		}
	}
	for i, st := range sts {
		st.quiet(t, 300*time.Millisecond)
		_ = i
	}
	expect(t, do(t, s.at(1), "GET", "/cancel/"+ev.ID, u.bearer(), nil), 409)
}

func scenarioAdmin(t *testing.T, s *system) {
	tok := s.adminToken
	name := uname(t, "root")
	id := expect(t, do(t, s.at(0), "POST", "/create_user", "", map[string]any{
		"username": name, "password": "pw", "admin_token": tok, "tenant_name": "acme-" + randomHex(4),
	}), 200).field(t, "id")
	expect(t, do(t, s.at(1), "POST", "/create_user", "", map[string]any{"username": name, "password": "pw", "admin_token": tok, "tenant_name": "x"}), 409)
	expect(t, do(t, s.at(1), "POST", "/create_user", "", map[string]any{"username": uname(t, "x"), "password": "pw", "admin_token": "wrong", "tenant_name": "x"}), 401)

	var got map[string]any
	eventually(t, 10*time.Second, "the user on "+s.at(2).name, func() bool {
		r := do(t, s.at(2), "POST", "/get_user", "", map[string]string{"admin_token": tok, "username": name})
		if r.code == 404 {
			return false
		}
		expect(t, r, 200).json(t, &got)
		return true
	})
	if got["id"] != id || got["password"] != "***" {
		t.Fatalf("get_user: %v", got)
	}
	var list []map[string]any
	expect(t, do(t, s.at(2), "POST", "/list_users", "", map[string]string{"admin_token": tok}), 200).json(t, &list)
	found := false
	for _, u := range list {
		found = found || u["username"] == name
		if u["password"] != "***" {
			t.Fatalf("password shown: %v", u)
		}
	}
	if !found {
		t.Fatalf("list_users lacks %s: %v", name, list)
	}
	expect(t, do(t, s.at(2), "POST", "/list_users", "", map[string]string{"admin_token": "nope"}), 401)
	expect(t, do(t, s.at(2), "POST", "/get_user", "", map[string]string{"admin_token": tok, "username": uname(t, "ghost")}), 404)
	expect(t, do(t, s.at(2), "POST", "/revoke_user", "", map[string]string{"admin_token": tok, "username": uname(t, "ghost")}), 404)

	// Revoked on one node: refused on every node; unrevoked: back.
	u := signup(t, s.at(0), s.at(1), uname(t, "ann"), "acme-"+randomHex(4))
	expect(t, do(t, s.at(0), "POST", "/revoke_user", "", map[string]string{"admin_token": tok, "username": u.name}), 200)
	for i := range 3 {
		eventually(t, 5*time.Second, "the revocation on "+s.at(i).name, func() bool {
			return do(t, s.at(i), "GET", "/verify", u.bearer(), nil).code == 401
		})
		expect(t, do(t, s.at(i), "POST", "/login", "", map[string]string{"username": u.name, "password": u.pass}), 401)
	}
	expect(t, do(t, s.at(1), "POST", "/unrevoke_user", "", map[string]string{"admin_token": tok, "username": u.name}), 200)
	// Spaced tries: the failed-login limit counts refusals.
	deadline := time.Now().Add(5 * time.Second)
	for do(t, s.at(2), "POST", "/login", "", map[string]string{"username": u.name, "password": u.pass}).code != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("login refused on %s 5 s after the unrevoke", s.at(2).name)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func scenarioErrors(t *testing.T, s *system) {
	u := signup(t, s.at(0), s.at(0), uname(t, "ann"), "acme-"+randomHex(4))
	expect(t, do(t, s.at(1), "GET", "/nowhere", "", nil), 404)
	expect(t, do(t, s.at(1), "GET", "/insert", u.bearer(), nil), 405)
	expect(t, do(t, s.at(1), "GET", "/users", "", nil), 405)
	expect(t, do(t, s.at(2), "GET", "/collections/x", "", nil), 401)
	expect(t, do(t, s.at(2), "GET", "/user_events", "Bearer nonsense", nil), 401)
	expect(t, do(t, s.at(2), "GET", "/events/"+u.tenant+"-not", u.bearer(), nil), 403)
	if r := do(t, s.at(0), "POST", "/login", "", `{"username":"`+strings.Repeat("x", 2<<20)+`"}`); r.code != 413 {
		t.Fatalf("oversized body: %d %s", r.code, r.body)
	}
	expect(t, do(t, s.at(0), "GET", "/healthz", "", nil), 200)
	expect(t, do(t, s.at(0), "GET", "/readyz", "", nil), 200)
}

// TestRoutes runs every route scenario against one single node, then against a cluster of
// three.
func TestRoutes(t *testing.T) {
	for _, mode := range []struct {
		name  string
		start func(t testing.TB) *system
	}{
		{"single", func(t testing.TB) *system { return startSingle(t) }},
		{"cluster", func(t testing.TB) *system { return startCluster(t, 3) }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			s := mode.start(t)
			for _, sc := range routeScenarios {
				t.Run(sc.name, func(t *testing.T) { sc.run(t, s) })
			}
		})
	}
}
