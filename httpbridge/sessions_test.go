package httpbridge_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// jti reads the session id of a token (the test trusts its own server's token).
func jti(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ JTI string }
	if err := json.Unmarshal(b, &c); err != nil || c.JTI == "" {
		t.Fatalf("token claims %s: no jti (%v)", b, err)
	}
	return c.JTI
}

func (e *env) login(name string) user {
	e.t.Helper()
	var out struct{ JWT string }
	e.expect(e.do("POST", "/login", "", map[string]string{"username": name, "password": "pw-" + name}), 200).json(e.t, &out)
	return user{name: name, token: out.JWT}
}

// killed checks that the stream's last message is session_killed and that it ended within
// a second of since.
func (s *stream) killed(t *testing.T, since time.Time) {
	t.Helper()
	for {
		select {
		case m := <-s.msgs:
			if m.event != "session_killed" {
				continue // what was published before the kill
			}
			select {
			case <-s.done:
			case <-time.After(time.Second):
				t.Fatal("stream still open a second after session_killed")
			}
			if d := time.Since(since); d > time.Second {
				t.Fatalf("stream killed after %v, want within 1 s", d)
			}
			return
		case <-s.done:
			select {
			case m := <-s.msgs:
				if m.event == "session_killed" {
					return
				}
			default:
			}
			t.Fatal("stream ended without session_killed")
		case <-time.After(5 * time.Second):
			t.Fatal("no session_killed within 5 s")
		}
	}
}

func TestLogoutKillsTheSessionOnly(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	other := e.login("ann") // a second session of the same user
	if jti(t, u.token) == jti(t, other.token) {
		t.Fatal("two logins share a jti")
	}
	st := e.openStream("/sse", u.bearer(), nil)
	st2 := e.openStream("/events/acme?token="+u.token, "", nil)
	keep := e.openStream("/sse", other.bearer(), nil)

	var out struct {
		SessionID string `json:"session_id"`
		Expires   int64
	}
	start := time.Now()
	e.expect(e.do("POST", "/logout", u.bearer(), nil), 200).json(t, &out)
	if out.SessionID != jti(t, u.token) || out.Expires < e.clock.Now().Add(time.Hour).Unix() {
		t.Fatalf("logout reply %+v", out)
	}
	st.killed(t, start)
	st2.killed(t, start)
	for _, r := range []struct{ method, path string }{{"GET", "/verify"}, {"POST", "/insert"}, {"GET", "/sse"}, {"GET", "/user_events"}, {"POST", "/logout"}} {
		e.expect(e.do(r.method, r.path, u.bearer(), map[string]any{"event": "x", "data": 1}), 401)
	}
	r, err := e.cl.Get(e.url + "/events/acme?token=" + u.token)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 401 {
		t.Fatalf("stream with a logged-out token: %d", r.StatusCode)
	}
	// The other session lives on and still gets publications.
	e.expect(e.do("GET", "/verify", other.bearer(), nil), 200)
	e.insert(other, map[string]any{"event": "after", "data": 1})
	if m := keep.next(t); m.event != "after" {
		t.Fatalf("other session's stream got %+v", m)
	}
	// Basic credentials have no session to end.
	e.expect(e.do("POST", "/logout", basic("ann", "pw-ann"), nil), 400)

	// Still refused after a restart; the other session still works.
	e.restart()
	e.expect(e.do("GET", "/verify", u.bearer(), nil), 401)
	e.expect(e.do("GET", "/verify", other.bearer(), nil), 200)
}

func TestRevokeKillsEverySession(t *testing.T) {
	e := newEnv(t, nil)
	a := e.signup("ann", "acme")
	a2 := e.login("ann")
	b := e.signup("bob", "acme")
	s1 := e.openStream("/sse", a.bearer(), nil)
	s2 := e.openStream("/sse?token="+a2.token, "", nil)
	sb := e.openStream("/sse", b.bearer(), nil)
	start := time.Now()
	e.expect(e.do("POST", "/revoke_user", "", map[string]string{"admin_token": adminToken, "username": "ann"}), 200)
	s1.killed(t, start)
	s2.killed(t, start)
	e.expect(e.do("GET", "/verify", a2.bearer(), nil), 401)
	e.insert(b, map[string]any{"event": "still", "data": 1})
	if m := sb.next(t); m.event != "still" {
		t.Fatalf("bob's stream got %+v", m)
	}
}

// TestTokenCheckAllocatesNothing: the check of a token already seen (the cached signature and
// claims, the blacklist, the user record kept in memory) allocates nothing, so that requests
// that carry a token (inserts, polls, stream connects) pay nothing for it on the heap.
func TestTokenCheckAllocatesNothing(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	check := func() {
		if id, err := e.srv.CheckToken(u.token); err != nil || id == "" {
			t.Fatalf("CheckToken = %q, %v", id, err)
		}
	}
	check() // the first check verifies the token and reads the user
	if a := testing.AllocsPerRun(100, check); a != 0 {
		t.Fatalf("%.1f allocations per token check", a)
	}
}
