package httpbridge_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtbus/rtbus/httpbridge"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestSignupLoginVerify(t *testing.T) {
	e := newEnv(t, nil)
	r := e.expect(e.do("POST", "/users", "", map[string]any{
		"username": "ann", "password": "secret", "tenant_id": "acme", "info": map[string]any{"name": "Ann: the first"},
	}), 201)
	id := r.field(t, "id")
	if len(id) != 36 {
		t.Fatalf("id %q is not a UUID", id)
	}
	e.expect(e.do("POST", "/users", "", map[string]any{"username": "ann", "password": "x", "tenant_id": "other"}), 409)
	for name, body := range map[string]any{
		"no tenant":    map[string]any{"username": "bob", "password": "x"},
		"no password":  map[string]any{"username": "bob", "tenant_id": "acme"},
		"no username":  map[string]any{"password": "x", "tenant_id": "acme"},
		"colon":        map[string]any{"username": "b:ob", "password": "x", "tenant_id": "acme"},
		"long tenant":  map[string]any{"username": "bob", "password": "x", "tenant_id": strings.Repeat("t", 129)},
		"wrong type":   map[string]any{"username": 7, "password": "x", "tenant_id": "acme"},
		"roles public": map[string]any{"username": "bob", "password": "x", "tenant_id": "acme", "roles": []string{"admin"}},
	} {
		want := 400
		if name == "roles public" {
			want = 403
		}
		t.Run(name, func(t *testing.T) { e.expect(e.do("POST", "/users", "", body), want) })
	}
	e.expect(e.do("POST", "/users", "", "not json"), 400)
	e.expect(e.do("POST", "/users", "", ""), 400)
	e.expect(e.do("GET", "/users", "", nil), 405)

	tok := e.expect(e.do("POST", "/login", "", map[string]string{"username": "ann", "password": "secret"}), 200).field(t, "jwt")
	e.expect(e.do("POST", "/login", "", map[string]string{"username": "ann", "password": "wrong"}), 401)
	e.expect(e.do("POST", "/login", "", map[string]string{"username": "nobody", "password": "secret"}), 401)
	e.expect(e.do("POST", "/login", "", map[string]string{"username": "ann"}), 400)

	var v struct {
		TenantID string `json:"tenant_id"`
		Roles    []string
		Exp      int64
	}
	r = e.expect(e.do("GET", "/verify", "Bearer "+tok, nil), 200)
	r.json(t, &v)
	if r.field(t, "id") != id || r.field(t, "username") != "ann" || v.TenantID != "acme" || v.Roles == nil ||
		v.Exp != e.clock.Now().Unix()+3600 {
		t.Fatalf("verify: %s", r.body)
	}
	// Broker answered 400 for a missing header; we answer 401.
	e.expect(e.do("GET", "/verify", "", nil), 401)
	e.expect(e.do("GET", "/verify", "Token abc", nil), 401)
	e.expect(e.do("GET", "/verify", basic("ann", "secret"), nil), 200)
	e.expect(e.do("GET", "/verify", basic("ann", "nope"), nil), 401)
	e.expect(e.do("GET", "/verify", "Basic !!!", nil), 401)

	// The profile info is the first event of the user's collection.
	var ue struct{ Info, Events []record }
	e.expect(e.do("GET", "/user_events", "Bearer "+tok, nil), 200).json(t, &ue)
	if len(ue.Info) != 1 || ue.Info[0].Event != "user_info" || string(ue.Info[0].Data) != `{"name":"Ann: the first"}` {
		t.Fatalf("user_events info: %+v", ue.Info)
	}
}

func TestAdminRoutes(t *testing.T) {
	e := newEnv(t, nil)
	e.expect(e.do("POST", "/create_user", "", map[string]any{"username": "root", "password": "pw", "admin_token": "wrong", "tenant_name": "acme"}), 401)
	e.expect(e.do("POST", "/create_user", "", map[string]any{"username": "root", "password": "pw", "tenant_name": "acme"}), 401)
	id := e.expect(e.do("POST", "/create_user", "", map[string]any{
		"username": "root", "password": "pw", "admin_token": adminToken, "tenant_name": "acme", "roles": []string{"admin"},
	}), 200).field(t, "id")
	e.expect(e.do("POST", "/create_user", "", map[string]any{"username": "root", "password": "pw", "admin_token": adminToken, "tenant_name": "x"}), 409)
	e.signup("zed", "other")

	var list []map[string]any
	e.expect(e.do("POST", "/list_users", "", map[string]string{"admin_token": adminToken}), 200).json(t, &list)
	if len(list) != 2 || list[0]["username"] != "root" || list[1]["username"] != "zed" {
		t.Fatalf("list_users: %v", list)
	}
	for _, u := range list {
		if u["password"] != "***" || u["password_hash"] != nil {
			t.Fatalf("password leaked: %v", u)
		}
	}
	e.expect(e.do("POST", "/list_users", "", map[string]string{"admin_token": "nope"}), 401)

	// broker's /get_user returned every user; ours returns the one.
	r := e.expect(e.do("POST", "/get_user", "", map[string]string{"admin_token": adminToken, "username": "root"}), 200)
	if r.field(t, "id") != id || r.field(t, "password") != "***" || r.field(t, "tenant_id") != "acme" {
		t.Fatalf("get_user: %s", r.body)
	}
	e.expect(e.do("POST", "/get_user", "", map[string]string{"admin_token": adminToken, "username": "ghost"}), 404)
	e.expect(e.do("POST", "/get_user", "", map[string]string{"admin_token": adminToken}), 400)
	e.expect(e.do("POST", "/revoke_user", "", map[string]string{"admin_token": adminToken, "username": "ghost"}), 404)
	e.expect(e.do("POST", "/unrevoke_user", "", map[string]string{"admin_token": adminToken, "username": "ghost"}), 404)
	e.expect(e.do("POST", "/revoke_user", "", map[string]string{"admin_token": "x", "username": "root"}), 401)
}

func TestAdminSignupOnly(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.AdminSignupOnly = true })
	e.expect(e.do("POST", "/users", "", map[string]any{"username": "a", "password": "x", "tenant_id": "t"}), 401)
	e.expect(e.do("POST", "/users", "", map[string]any{"username": "a", "password": "x", "tenant_id": "t", "admin_token": adminToken}), 201)
}

func TestRevocationEverywhere(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	st := e.openStream("/sse", u.bearer(), nil)
	st2 := e.openStream("/events/acme?token="+u.token, "", nil)
	e.expect(e.do("POST", "/revoke_user", "", map[string]string{"admin_token": adminToken, "username": "ann"}), 200)
	st.ended(t)
	st2.ended(t)
	e.expect(e.do("GET", "/verify", u.bearer(), nil), 401)
	e.expect(e.do("GET", "/verify", basic("ann", "pw-ann"), nil), 401)
	e.expect(e.do("POST", "/login", "", map[string]string{"username": "ann", "password": "pw-ann"}), 401)
	e.expect(e.do("POST", "/insert", u.bearer(), map[string]any{"event": "x", "data": 1}), 401)
	r, _ := e.cl.Get(e.url + "/sse?token=" + u.token)
	r.Body.Close()
	if r.StatusCode != 401 {
		t.Fatalf("stream of a revoked user: %d", r.StatusCode)
	}
	var g map[string]any
	e.expect(e.do("POST", "/get_user", "", map[string]string{"admin_token": adminToken, "username": "ann"}), 200).json(t, &g)
	if g["revoked"] != true {
		t.Fatalf("get_user after revoke: %v", g)
	}

	// Unrevoking restores the user, not the tokens issued before the revocation.
	e.expect(e.do("POST", "/unrevoke_user", "", map[string]string{"admin_token": adminToken, "username": "ann"}), 200)
	e.expect(e.do("GET", "/verify", u.bearer(), nil), 401)
	e.expect(e.do("GET", "/verify", basic("ann", "pw-ann"), nil), 200)
	var login struct{ JWT string }
	e.expect(e.do("POST", "/login", "", map[string]string{"username": "ann", "password": "pw-ann"}), 200).json(t, &login)
	e.expect(e.do("GET", "/verify", "Bearer "+login.JWT, nil), 200)
}

func TestSecretsGenerated(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.AdminToken = "" })
	for _, name := range []string{"jwt_secret", "admin_token"} {
		fi, err := os.Stat(filepath.Join(e.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	b, _ := os.ReadFile(filepath.Join(e.dir, "admin_token"))
	tok := strings.TrimSpace(string(b))
	if len(tok) < 32 {
		t.Fatalf("admin token %q too short", tok)
	}
	e.expect(e.do("POST", "/list_users", "", map[string]string{"admin_token": tok}), 200)
	u := e.signup("ann", "acme")
	// The secret survives a restart: tokens stay valid.
	e.restart()
	e.expect(e.do("GET", "/verify", u.bearer(), nil), 200)
	e.expect(e.do("POST", "/list_users", "", map[string]string{"admin_token": tok}), 200)
}
