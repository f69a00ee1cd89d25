package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/rtbus/rtbus/cluster/clustertest"
)

// clusterNodes are the command lines of n rtbusd nodes routed to each other on loopback, each
// with its own data directory, the bridge and the internal API on free ports.
func clusterNodes(t *testing.T, n int) [][]string {
	t.Helper()
	ports := clustertest.FreePorts(t, n)
	base := t.TempDir()
	out := make([][]string, n)
	for i := range n {
		var peers []string
		for j, p := range ports {
			if j != i {
				peers = append(peers, fmt.Sprintf("127.0.0.1:%d", p))
			}
		}
		out[i] = []string{"-cluster", "test", "-cluster-node", fmt.Sprintf("n%d", i+1),
			"-cluster-listen", fmt.Sprintf("127.0.0.1:%d", ports[i]), "-cluster-peers", strings.Join(peers, ","),
			"-data-dir", filepath.Join(base, fmt.Sprintf("n%d", i+1))}
	}
	return out
}

// startNode starts one rtbusd of clusterNodes; its data directory is the one given there.
func startNode(t *testing.T, bin string, args []string) *gateway {
	t.Helper()
	var data string
	for i, a := range args {
		if a == "-data-dir" {
			data = args[i+1]
		}
	}
	return startGateway(t, bin, data, args...)
}

// readyz is the status code of GET /readyz on the node's internal API.
func readyz(d *gateway) int {
	resp, err := http.Get(d.intern + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitReadyz(t *testing.T, d *gateway, code int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for readyz(d) != code {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer %d within %v:\n%s", code, within, d.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Three nodes form a cluster: /readyz answers 503 until JetStream has a leader, then 200 on
// each; the logs name the meta leader. Two nodes killed: the survivor answers 503 (no
// quorum) within seconds; one of them back: 200 again.
func TestClusterReadiness(t *testing.T) {
	bin := buildDaemon(t)
	args := clusterNodes(t, 3)
	nodes := make([]*gateway, 3)
	for i := range nodes {
		nodes[i] = startNode(t, bin, args[i])
	}
	for _, d := range nodes {
		waitReadyz(t, d, 200, 60*time.Second)
	}
	var leader string
	for _, d := range nodes {
		waitFor(t, "the meta leader in the log", func() bool { return strings.Contains(d.logs.String(), `"cluster: JetStream meta leader" leader=n`) })
		if code, body := call(t, "GET", d.public+"/healthz", "", ""); code != 200 {
			t.Fatalf("public /healthz: %d %s", code, body)
		}
		// The internal API's view: two routes, one meta leader that every node names.
		var st struct {
			Ready      bool   `json:"ready"`
			MetaLeader string `json:"meta_leader"`
			Routes     []struct {
				Node string `json:"node"`
			} `json:"routes"`
		}
		waitFor(t, "two routes and a meta leader", func() bool {
			code, body := call(t, "GET", d.intern+"/v1/cluster", "Bearer secret-admin", "")
			return code == 200 && json.Unmarshal([]byte(body), &st) == nil && st.Ready && len(st.Routes) == 2 && st.MetaLeader != ""
		})
		if leader == "" {
			leader = st.MetaLeader
		} else if st.MetaLeader != leader {
			t.Errorf("meta leader %q here, %q on the first node", st.MetaLeader, leader)
		}
	}
	// The cluster's figures are in the metrics.
	if code, body := call(t, "GET", nodes[0].intern+"/metrics", "Bearer secret-admin", ""); code != 200 ||
		!strings.Contains(body, "rtbus_cluster_ready 1") || !strings.Contains(body, "rtbus_cluster_routes 2") {
		t.Errorf("metrics: %d\n%s", code, body)
	}

	for _, d := range nodes[1:] {
		d.cmd.Process.Signal(syscall.SIGKILL)
		d.cmd.Wait()
	}
	waitReadyz(t, nodes[0], 503, 15*time.Second)
	if code, body := call(t, "GET", nodes[0].intern+"/readyz", "", ""); code != 503 || !strings.Contains(body, "quorum") && !strings.Contains(body, "meta leader") {
		t.Errorf("/readyz without quorum: %d %s", code, body)
	}
	waitFor(t, "the lost quorum in the log", func() bool { return strings.Contains(nodes[0].logs.String(), "JetStream not ready") })

	nodes[1] = startNode(t, bin, args[1]) // same data directory: it rejoins
	waitReadyz(t, nodes[0], 200, 60*time.Second)
	waitReadyz(t, nodes[1], 200, 60*time.Second)
	nodes[0].stop(t)
	nodes[1].stop(t)
}

// A node whose peers are all down has no quorum (replicas 3): it serves at once, /healthz
// answers 200, but /readyz and the public routes answer 503, and the log says it waits.
func TestClusterLoneNodeNotReady(t *testing.T) {
	bin := buildDaemon(t)
	d := startNode(t, bin, clusterNodes(t, 3)[0])
	if code, body := call(t, "GET", d.intern+"/healthz", "", ""); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	waitFor(t, "the waiting line", func() bool {
		return strings.Contains(d.logs.String(), "cluster: waiting for JetStream to elect a leader")
	})
	for range 3 { // over three of the node's readiness checks
		if code, body := call(t, "GET", d.intern+"/readyz", "", ""); code != 503 || !strings.Contains(body, "error") {
			t.Fatalf("/readyz with no peer up: %d %s", code, body)
		}
		if code, body := call(t, "POST", d.public+"/login", "", `{"username":"a","password":"b"}`); code != 503 {
			t.Fatalf("/login with no peer up: %d %s", code, body)
		}
		time.Sleep(time.Second)
	}
	d.stop(t) // stops cleanly while still waiting
}

// Bad combinations of the cluster flags stop rtbusd at once with a message naming them.
func TestClusterBadFlags(t *testing.T) {
	bin := buildDaemon(t)
	port := freePort(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().String()
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"listen without cluster", []string{"-cluster-listen", port}, nil, "-cluster-listen needs -cluster NAME"},
		{"cluster without listen", []string{"-cluster", "x"}, nil, "-cluster needs -cluster-listen"},
		{"both embedded and external", []string{"-cluster", "x", "-cluster-listen", port, "-nats-url", "nats://127.0.0.1:1"}, nil, "one or the other"},
		{"peers alone", []string{"-cluster-peers", port}, nil, "-cluster-peers is for cluster mode"},
		{"replicas alone", []string{"-cluster-replicas", "3"}, nil, "-cluster-replicas is for cluster mode"},
		{"credentials alone", nil, []string{"RTBUS_NATS_TOKEN=t"}, "-nats-token is for cluster mode"},
		{"credentials for the embedded server", []string{"-cluster", "x", "-cluster-listen", port, "-nats-user", "u"}, nil, "-nats-user is for -nats-url"},
		{"two kinds of credentials", []string{"-nats-url", "nats://127.0.0.1:1", "-nats-user", "u", "-nats-token", "t"}, nil, "one kind of NATS credentials"},
		{"password without user", []string{"-nats-url", "nats://127.0.0.1:1", "-nats-password", "p"}, nil, "-nats-password goes with -nats-user"},
		{"url without scheme", []string{"-nats-url", "127.0.0.1:4222"}, nil, "bad -nats-url"},
		{"bad listen address", []string{"-cluster", "x", "-cluster-listen", "nowhere"}, nil, "bad -cluster-listen"},
		{"bad peer", []string{"-cluster", "x", "-cluster-listen", port, "-cluster-peers", "a:b"}, nil, "bad -cluster-peers"},
		{"self as peer", []string{"-cluster", "x", "-cluster-listen", port, "-cluster-peers", port}, nil, "own -cluster-listen"},
		{"bad name", []string{"-cluster", "a b", "-cluster-listen", port}, nil, "bad -cluster"},
		{"bad node name", []string{"-cluster", "x", "-cluster-listen", port, "-cluster-node", "my node"}, nil, "bad -cluster-node"},
		{"more replicas than nodes", []string{"-cluster", "x", "-cluster-listen", port, "-cluster-replicas", "3"}, nil, "needs at least 3 nodes"},
		{"replicas out of range", []string{"-cluster", "x", "-cluster-listen", port, "-cluster-replicas", "7"}, nil, "want 1 to 5"},
		{"sync alone", []string{"-cluster-sync", "2m"}, nil, "-cluster-sync is for cluster mode"},
		{"negative sync", []string{"-cluster", "x", "-cluster-listen", port, "-cluster-sync", "-1s"}, nil, "bad -cluster-sync"},
		{"sync with an external cluster", []string{"-nats-url", "nats://127.0.0.1:1", "-cluster-sync", "2m"}, nil, "-cluster-sync is for the embedded"},
		{"election timeout alone", []string{"-cluster-election-timeout", "5s"}, nil, "-cluster-election-timeout is for cluster mode"},
		{"short election timeout", []string{"-cluster", "x", "-cluster-listen", port, "-cluster-election-timeout", "1s"}, nil, "bad -cluster-election-timeout 1s: at least 2s"},
		{"election timeout with an external cluster", []string{"-nats-url", "nats://127.0.0.1:1", "-cluster-election-timeout", "5s"}, nil, "-cluster-election-timeout is for the embedded"},
		{"bad replicas in the environment", nil, []string{"RTBUS_CLUSTER_REPLICAS=three"}, "RTBUS_CLUSTER_REPLICAS"},
		{"no bridge", []string{"-cluster", "x", "-cluster-listen", port, "-http", "off"}, nil, "needs the bridge"},
		{"unreachable NATS", []string{"-nats-url", "nats://" + port}, nil, "connect to NATS"},
		{"route port taken", []string{"-cluster", "x", "-cluster-listen", taken, "-cluster-peers", port}, nil, "address already in use"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"-B", filepath.Join(t.TempDir(), "bus.sock"), "-http", "127.0.0.1:0", "-data-dir", t.TempDir()}, c.args...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), c.env...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("still running after 30 s:\n%s", out)
			}
			if err == nil {
				t.Fatalf("exit 0, want failure; output:\n%s", out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("output does not say %q:\n%s", c.want, out)
			}
		})
	}
}

// natsServer runs a standalone NATS server with JetStream on a free loopback port, asking for
// token, until the test ends; it returns its URL.
func natsServer(t *testing.T, token string) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Authorization: token, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// -nats-url: rtbusd runs no NATS server of its own and gets ready on the external one, with
// the token from the environment; a wrong token stops it with the server's refusal.
func TestClusterExternalNATS(t *testing.T) {
	bin := buildDaemon(t)
	url := natsServer(t, "s3cret")

	cmd := exec.Command(bin, "-B", filepath.Join(t.TempDir(), "bus.sock"), "-http", "127.0.0.1:0", "-data-dir", t.TempDir(), "-nats-url", url)
	cmd.Env = append(os.Environ(), "RTBUS_NATS_TOKEN=wrong")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "connect to NATS") {
		t.Fatalf("wrong token: %v\n%s", err, out)
	}

	t.Setenv("RTBUS_NATS_TOKEN", "s3cret")
	d := startGateway(t, bin, t.TempDir(), "-nats-url", url, "-cluster-node", "ext1", "-cluster-replicas", "1") // a standalone server keeps one copy
	waitReadyz(t, d, 200, 60*time.Second)
	var st struct {
		Node, Mode string
		Ready      bool
		Routes     []any
	}
	code, body := call(t, "GET", d.intern+"/v1/cluster", "Bearer secret-admin", "")
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Node != "ext1" || st.Mode != "external" || !st.Ready || len(st.Routes) != 0 {
		t.Fatalf("/v1/cluster: %d %s", code, body)
	}
	if !strings.Contains(d.logs.String(), `"cluster: connected to NATS"`) || strings.Contains(d.logs.String(), "embedded NATS server started") {
		t.Errorf("log:\n%s", d.logs)
	}
	d.stop(t)
}
