package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rtbus cluster status: a single-node daemon is refused with a clear message (exit 1); a
// cluster node (here a cluster of one, embedded) prints its view, as text or JSON.
func TestClusterStatus(t *testing.T) {
	status := func(in string, args ...string) result {
		t.Helper()
		return rtbus(t, "unused.sock", "", append([]string{"cluster", "status", "-a", in, "-token", "adm"}, args...)...)
	}
	_, single := gatewayDaemon(t)
	r := status(single)
	if r.code != 1 || !strings.Contains(r.stderr, "runs single-node") {
		t.Fatalf("single node: %+v", r)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	route := ln.Addr().String()
	ln.Close()
	_, in := gatewayDaemon(t, "-cluster", "solo", "-cluster-node", "solo1", "-cluster-listen", route)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(in + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster node did not get ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r = status(in)
	for _, w := range []string{"node:        solo1 (embedded, cluster solo)", "jetstream:   ready", "meta leader: solo1 (1 nodes)", "replicas:    1", "routes:      0 peers", "STREAM"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("status does not say %q: %+v", w, r)
		}
	}
	if r.code != 0 {
		t.Fatalf("status: %+v", r)
	}
	r = status(in, "-json")
	var st struct {
		Node, Mode, MetaLeader string
		Ready                  bool
		Streams                []struct{ Name, Leader string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("status -json: %+v (%v)", r, err)
	}
	if st.Node != "solo1" || st.Mode != "embedded" || !st.Ready {
		t.Errorf("status -json: %+v", st)
	}
	names := ""
	for _, s := range st.Streams {
		names += s.Name + " "
		if s.Leader != "solo1" {
			t.Errorf("stream %s led by %q, want solo1", s.Name, s.Leader)
		}
	}
	if !strings.Contains(names, "RTBUS_EVENTS ") || !strings.Contains(r.stdout, "RTBUS_EVENTS") {
		t.Errorf("the event log is not among the streams %q", names)
	}

	want(t, rtbus(t, "unused.sock", "", "cluster"), 2, "")
	want(t, rtbus(t, "unused.sock", "", "cluster", "status", "-a", in, "-token", "adm", "extra"), 2, "")
	want(t, rtbus(t, "unused.sock", "", "cluster", "status", "-a", "127.0.0.1:1", "-token", "adm"), 3, "")
}
