package httpbridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/cluster"
	"github.com/rtbus/rtbus/cluster/clustertest"
	"github.com/rtbus/rtbus/httpbridge"
)

// clusterEnvs starts three cluster nodes in-process and a bridge on each, with no configured
// secrets: they come from the cluster.
func clusterEnvs(t *testing.T) ([]*env, []*cluster.Node) {
	t.Helper()
	nodes := clustertest.Start(t, 3)
	envs := make([]*env, len(nodes))
	for i, nd := range nodes {
		envs[i] = newEnv(t, func(c *httpbridge.Config) { c.Cluster, c.AdminToken = nd, "" })
	}
	return envs, nodes
}

// within waits for c's end and fails unless it came before deadline; it returns the messages
// that came before the end.
func within(t *testing.T, what string, c *tclient, deadline time.Time) []sseMsg {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(time.Until(deadline)):
		t.Fatalf("%s: stream still open at the deadline", what)
	}
	var ms []sseMsg
	for {
		select {
		case m := <-c.msgs:
			ms = append(ms, m)
		default:
			return ms
		}
	}
}

// refusedBy polls GET /verify with token on e until it is refused (401), failing at deadline
// (the other nodes learn of a revocation or a logout within a second, not at once).
func refusedBy(t *testing.T, e *env, token string, deadline time.Time) {
	t.Helper()
	for {
		r := e.do("GET", "/verify", "Bearer "+token, nil)
		if r.code == 401 {
			e.expect(r, 401)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("token still accepted at the deadline: %d %s", r.code, r.body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// verifyCode is the status of GET /verify with the token on e.
func verifyCode(e *env, token string) int {
	return e.do("GET", "/verify", "Bearer "+token, nil).code
}

func TestClusterAccounts(t *testing.T) {
	envs, nodes := clusterEnvs(t)
	n1, n2, n3 := envs[0], envs[1], envs[2]

	// One admin token for the cluster, in every node's data directory.
	tok, err := os.ReadFile(filepath.Join(n1.dir, "admin_token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs[1:] {
		if b, err := os.ReadFile(filepath.Join(e.dir, "admin_token")); err != nil || !bytes.Equal(b, tok) {
			t.Fatalf("admin tokens differ between nodes: %q, %q (%v)", tok, b, err)
		}
	}
	admin := strings.TrimSpace(string(tok))
	adminBody := func(m map[string]any) map[string]any { m["admin_token"] = admin; return m }

	// Sign up on one node, log in on another, token valid on a third.
	{
		n1.expect(n1.do("POST", "/users", "", map[string]any{"username": "ann", "password": "pw-ann", "tenant_id": "acme"}), 201)
		u := n2.login("ann")
		n3.expect(n3.do("GET", "/verify", u.bearer(), nil), 200)
		n3.expect(n3.do("POST", "/get_user", "", adminBody(map[string]any{"username": "ann"})), 200)
		// Basic credentials too, on every node.
		for _, e := range envs {
			e.expect(e.do("GET", "/verify", basic("ann", "pw-ann"), nil), 200)
		}
	}

	// Concurrent sign-ups of one username: exactly one wins.
	{
		for round := range 3 {
			name := "bob" + strings.Repeat("é", round)
			codes := make([]int, len(envs))
			var wg sync.WaitGroup
			for i, e := range envs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					b, _ := json.Marshal(map[string]any{"username": name, "password": "pw", "tenant_id": "acme"})
					resp, err := e.cl.Post(e.url+"/users", "application/json", bytes.NewReader(b))
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					codes[i] = resp.StatusCode
				}()
			}
			wg.Wait()
			created := 0
			for _, c := range codes {
				switch c {
				case 201:
					created++
				case 409:
				default:
					t.Fatalf("sign-up answered %d; codes %v", c, codes)
				}
			}
			if created != 1 {
				t.Fatalf("%d sign-ups of %q succeeded (codes %v), want exactly 1", created, name, codes)
			}
			// Node 3 lists it once (from memory: once its watcher has it, if another node won).
			waitFor(t, "list_users on node 3 to have it once", func() bool {
				var users []map[string]any
				n3.expect(n3.do("POST", "/list_users", "", adminBody(map[string]any{})), 200).json(t, &users)
				seen := 0
				for _, u := range users {
					if u["username"] == name {
						seen++
					}
				}
				if seen > 1 {
					t.Fatalf("list_users on node 3 has %q %d times", name, seen)
				}
				return seen == 1
			})
		}
	}

	// Revocation on one node closes the user's streams on the others within a second.
	{
		n1.expect(n1.do("POST", "/users", "", map[string]any{"username": "rev", "password": "pw-rev", "tenant_id": "acme"}), 201)
		u := n2.login("rev")
		b1, b3 := len(n1.srv.Conns()), len(n3.srv.Conns())
		sse1 := mustOpen(t, streamTransports[0], n1, "", u.bearer(), nil)
		ws3 := mustOpen(t, streamTransports[1], n3, "", u.bearer(), nil)
		poll3 := mustOpen(t, streamTransports[2], n3, "", u.bearer(), nil)
		sseBasic3 := mustOpen(t, streamTransports[0], n3, "", basic("rev", "pw-rev"), nil)
		waitFor(t, "the streams registered", func() bool { return len(n1.srv.Conns()) == b1+1 && len(n3.srv.Conns()) == b3+3 })

		start := time.Now()
		n2.expect(n2.do("POST", "/revoke_user", "", adminBody(map[string]any{"username": "rev"})), 200)
		deadline := start.Add(time.Second)
		for _, c := range []struct {
			name string
			c    *tclient
		}{{"sse on node 1", sse1}, {"basic sse on node 3", sseBasic3}} {
			if ms := within(t, c.name, c.c, deadline); len(ms) == 0 || ms[len(ms)-1].event != "session_killed" {
				t.Fatalf("%s ended with %+v, want session_killed last", c.name, ms)
			}
		}
		within(t, "ws on node 3", ws3, deadline)
		if code := ws3.code.Load(); code != 4001 {
			t.Fatalf("ws close code %d, want 4001", code)
		}
		within(t, "poll on node 3", poll3, deadline)
		if st := poll3.status.Load(); st != http.StatusUnauthorized {
			t.Fatalf("poll status %d, want 401", st)
		}
		t.Logf("revocation on node 2 closed 4 streams on nodes 1 and 3 in %v", time.Since(start))
		// Refused everywhere, by token, password and Basic; unrevoking does not bring the
		// old token back.
		for _, e := range envs {
			refusedBy(t, e, u.token, deadline)
			e.expect(e.do("POST", "/login", "", map[string]string{"username": "rev", "password": "pw-rev"}), 401)
		}
		n3.expect(n3.do("POST", "/unrevoke_user", "", adminBody(map[string]any{"username": "rev"})), 200)
		waitFor(t, "the unrevocation on node 1", func() bool {
			return n1.do("POST", "/login", "", map[string]string{"username": "rev", "password": "pw-rev"}).code == 200
		})
		n1.expect(n1.do("GET", "/verify", u.bearer(), nil), 401)
	}

	// Logout on one node refuses the token and kills its streams on the others.
	{
		n1.expect(n1.do("POST", "/users", "", map[string]any{"username": "out", "password": "pw-out", "tenant_id": "acme"}), 201)
		u := n1.login("out")
		other := n2.login("out") // another session of the same user stays
		b2, b3 := len(n2.srv.Conns()), len(n3.srv.Conns())
		sse3 := mustOpen(t, streamTransports[0], n3, "", u.bearer(), nil)
		ws2 := mustOpen(t, streamTransports[1], n2, "", u.bearer(), nil)
		keep := mustOpen(t, streamTransports[0], n3, "", other.bearer(), nil)
		waitFor(t, "the streams registered", func() bool { return len(n2.srv.Conns()) == b2+1 && len(n3.srv.Conns()) == b3+2 })

		start := time.Now()
		n1.expect(n1.do("POST", "/logout", u.bearer(), nil), 200)
		deadline := start.Add(time.Second)
		if ms := within(t, "sse on node 3", sse3, deadline); len(ms) == 0 || ms[len(ms)-1].event != "session_killed" {
			t.Fatalf("sse ended with %+v, want session_killed", ms)
		}
		within(t, "ws on node 2", ws2, deadline)
		if code := ws2.code.Load(); code != 4001 {
			t.Fatalf("ws close code %d, want 4001", code)
		}
		t.Logf("logout on node 1 closed the session's streams on nodes 2 and 3 in %v", time.Since(start))
		for _, e := range envs {
			refusedBy(t, e, u.token, deadline)
			e.expect(e.do("GET", "/verify", other.bearer(), nil), 200)
		}
		keep.quiet(t, 100*time.Millisecond)
		select {
		case <-keep.done:
			t.Fatal("the user's other session was closed")
		default:
		}
		keep.close()
		// The blacklist outlives a node's restart: it is in the bucket.
		n2.restart()
		n2.expect(n2.do("GET", "/verify", u.bearer(), nil), 401)
		n2.expect(n2.do("GET", "/verify", other.bearer(), nil), 200)
	}

	// Blacklist entries expire on every node.
	{
		u := n1.login("out")
		id := jti(t, u.token)
		n2.expect(n2.do("POST", n2.iurl+"/v1/session-blacklist", "Bearer "+admin,
			map[string]any{"session_id": id, "validity_seconds": 1}), 201)
		for _, e := range envs {
			waitFor(t, "the entry on every node", func() bool {
				return e.do("GET", e.iurl+"/v1/session-blacklist/"+id, "Bearer "+admin, nil).code == 200
			})
			e.expect(e.do("GET", "/verify", u.bearer(), nil), 401)
		}
		// The nodes' clocks stand still (test clocks): only the bucket's TTL removes it.
		for _, e := range envs {
			waitFor(t, "the entry gone by its TTL", func() bool {
				return e.do("GET", e.iurl+"/v1/session-blacklist/"+id, "Bearer "+admin, nil).code == 404
			})
			e.expect(e.do("GET", "/verify", u.bearer(), nil), 200)
		}
		// Taken off the blacklist on one node: accepted on the others.
		n3.expect(n3.do("POST", n3.iurl+"/v1/session-blacklist", "Bearer "+admin,
			map[string]any{"session_id": id, "validity_seconds": 600}), 201)
		waitFor(t, "the entry on node 1", func() bool { return verifyCode(n1, u.token) == 401 })
		n1.expect(n1.do("DELETE", n1.iurl+"/v1/session-blacklist/"+id, "Bearer "+admin, nil), 204)
		for _, e := range envs {
			waitFor(t, "the token accepted again", func() bool { return verifyCode(e, u.token) == 200 })
		}
	}

	// Tenant settings on one node make the tenant public on the others.
	{
		publicCode := func(e *env) int {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/public/events/pub", nil)
			resp, err := e.cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if c := publicCode(n3); c != 404 {
			t.Fatalf("a tenant not public: %d, want 404", c)
		}
		n1.expect(n1.do("POST", "/tenant_settings", "", adminBody(map[string]any{"tenant_id": "pub", "public": true})), 200)
		waitFor(t, "the tenant public on node 3", func() bool { return publicCode(n3) == 200 })
		before := len(n3.srv.Conns())
		c := n3.openStream("/public/events/pub", "", nil)
		waitFor(t, "the anonymous stream registered", func() bool { return len(n3.srv.Conns()) == before+1 })
		n2.expect(n2.do("POST", "/tenant_settings", "", adminBody(map[string]any{"tenant_id": "pub", "public": false})), 200)
		c.ended(t)
		waitFor(t, "the tenant no longer public on node 3", func() bool { return publicCode(n3) == 404 })
	}

	// Secrets given as flags win over the cluster's: a server so configured (here a fourth on
	// node 3) signs with its own secret and takes only its own admin token.
	{
		own := newEnv(t, func(c *httpbridge.Config) { c.Cluster, c.AdminToken, c.JWTSecret = nodes[2], "own-admin", "own-secret" })
		if _, err := os.Stat(filepath.Join(own.dir, "admin_token")); !os.IsNotExist(err) {
			t.Fatalf("a configured admin token written to the data directory: %v", err)
		}
		u := own.login("ann")
		own.expect(own.do("GET", "/verify", u.bearer(), nil), 200)
		n1.expect(n1.do("GET", "/verify", u.bearer(), nil), 401)
		own.expect(own.do("GET", "/verify", n1.login("ann").bearer(), nil), 401)
		own.expect(own.do("POST", "/get_user", "", map[string]any{"admin_token": "own-admin", "username": "ann"}), 200)
		own.expect(own.do("POST", "/get_user", "", adminBody(map[string]any{"username": "ann"})), 401)
	}
}
