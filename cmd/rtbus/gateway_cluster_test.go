package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/cluster/clustertest"
	"github.com/rtbus/rtbus/httpbridge"
)

// rtbus gateway push|kill|who against one node of a cluster (bridges in this process, the
// CLI a child process) reaches the streams of another node.
func TestGatewayCommandsCluster(t *testing.T) {
	build(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var pub, in []string
	// Three nodes, as the buckets' three copies need; bridges on the first two.
	for _, nd := range clustertest.Start(t, 3)[:2] {
		srv, err := httpbridge.New(nil, httpbridge.Config{DataDir: t.TempDir(), Cluster: nd, AdminToken: "adm",
			JWTSecret: "cluster-cli-secret", BcryptCost: 4, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		hs, ihs := httptest.NewServer(srv.Handler()), httptest.NewServer(srv.InternalHandler())
		t.Cleanup(func() { srv.Close(); hs.Close(); ihs.Close() })
		pub, in = append(pub, hs.URL), append(in, ihs.URL)
	}
	gw := func(args ...string) result {
		t.Helper()
		return rtbus(t, "unused.sock", "", append([]string{"gateway"}, args...)...)
	}
	// Node 1 lists node 2's streams once both know each other.
	deadline := time.Now().Add(10 * time.Second)
	for r := gw("who", "-a", in[0], "-token", "adm"); !strings.HasPrefix(r.stdout, "NODE"); r = gw("who", "-a", in[0], "-token", "adm") {
		if time.Now().After(deadline) {
			t.Fatalf("who on a cluster node: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A user of node 2 with a stream there.
	post(t, pub[1]+"/users", `{"username":"ann","password":"pw","tenant_id":"acme"}`)
	tok, _ := post(t, pub[1]+"/login", `{"username":"ann","password":"pw"}`)["jwt"].(string)
	s, closeS := sseLines(t, pub[1]+"/sse?token="+tok)
	defer closeS()

	r := gw("who", "-a", in[0], "-token", "adm", "-tenant", "acme")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, "n2 ") || !strings.Contains(r.stdout, " ann ") {
		t.Fatalf("who on node 1: %+v", r)
	}
	r = gw("who", "-a", in[0], "-token", "adm", "-json")
	var conns []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &conns); err != nil || len(conns) != 1 || conns[0]["node"] != "n2" {
		t.Fatalf("who -json on node 1: %+v (%v)", r, err)
	}
	want(t, gw("push", "-a", in[0], "-token", "adm", "acme", "hello", `{"n":1}`), 0, "delivered to 1 streams\n")
	expectLine(t, s, "event:hello")
	want(t, gw("kill", "-a", in[0], "-token", "adm", sessionID(t, tok)), 0, "")
	expectLine(t, s, "event:session_killed")
}
