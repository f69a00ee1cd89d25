package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

	"github.com/rtbus/rtbus/internal/testutil"
)

// node is one rtbusd process: its addresses and data directory stay the same across
// restarts, so a restarted node is the same cluster member with the same data.
type node struct {
	t       testing.TB
	name    string
	url     string // http://127.0.0.1:port of the HTTP bridge
	iurl    string // http://127.0.0.1:port of the internal API
	route   string // 127.0.0.1:port of the cluster route listener; "" on a single node
	dataDir string
	admin   string // the admin token
	args    []string
	env     []string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been waited for
	logs   *testutil.Buffer
	runs   int
}

// system is what a test runs against: one node, or the nodes of one cluster. Requests name a
// node by index; on a single node every index is that node.
type system struct {
	t          testing.TB
	nodes      []*node
	adminToken string
	cluster    bool
}

// at returns node i, modulo the number of nodes.
func (s *system) at(i int) *node { return s.nodes[i%len(s.nodes)] }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startSingle starts one rtbusd without cluster flags and waits until it is ready.
func startSingle(t testing.TB, extra ...string) *system {
	t.Helper()
	s := &system{t: t, adminToken: randomHex(16)}
	ports := freePorts(t, 2)
	n := s.newNode("single", ports[0], ports[1], "", nil, extra)
	s.nodes = []*node{n}
	n.start()
	n.waitReady(60 * time.Second)
	return s
}

// startCluster starts n rtbusd nodes routed to each other on loopback, each with its own
// data directory, and waits until every one is ready (JetStream has a leader).
func startCluster(t testing.TB, n int, extra ...string) *system {
	t.Helper()
	return startClusterVia(t, n, nil, extra...)
}

// startClusterVia is startCluster where node i reaches node j's route listener (at route) at
// the address peer returns: a proxy's, for partitions. nil peer: the route itself.
func startClusterVia(t testing.TB, n int, peer func(i, j int, route string) string, extra ...string) *system {
	t.Helper()
	s := &system{t: t, adminToken: randomHex(16), cluster: true}
	ports := freePorts(t, 3*n)
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("127.0.0.1:%d", ports[2*n+i])
	}
	for i := range n {
		var peers []string
		for j, r := range routes {
			if j != i {
				if peer != nil {
					r = peer(i, j, r)
				}
				peers = append(peers, r)
			}
		}
		s.nodes = append(s.nodes, s.newNode(fmt.Sprintf("n%d", i+1), ports[i], ports[n+i], routes[i], peers, extra))
	}
	for _, nd := range s.nodes {
		nd.start()
	}
	for _, nd := range s.nodes {
		nd.waitReady(90 * time.Second)
	}
	s.warmUp()
	return s
}

// warmUp waits until an insert is answered on every node: /readyz says JetStream answers,
// but the first inserts after a start can still find a node's index not yet following the
// event log (503 "index is behind", see the report of issue 17).
func (s *system) warmUp() {
	t := s.t
	t.Helper()
	u := signup(t, s.nodes[0], s.nodes[0], "warmup-"+randomHex(4), "warmup-"+randomHex(4))
	for _, n := range s.nodes {
		insertRetry(t, n, u, map[string]any{"event": "warmup", "data": 1})
	}
}

func (s *system) newNode(name string, httpPort, internalPort int, route string, peers []string, extra []string) *node {
	t := s.t
	dir := t.TempDir()
	n := &node{
		t: t, name: name, route: route,
		url:     fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		iurl:    fmt.Sprintf("http://127.0.0.1:%d", internalPort),
		dataDir: filepath.Join(dir, "data"),
		admin:   s.adminToken,
		logs:    &testutil.Buffer{},
	}
	n.args = []string{
		"-B", filepath.Join(dir, "bus.sock"),
		"-http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"-internal", fmt.Sprintf("127.0.0.1:%d", internalPort),
		"-data-dir", n.dataDir,
		"-ntp", "off",
		"-log-level", "info",
	}
	if route != "" {
		n.args = append(n.args, "-cluster", "e2e", "-cluster-node", name, "-cluster-listen", route,
			"-cluster-peers", strings.Join(peers, ","))
	}
	n.args = append(n.args, extra...)
	// The secrets travel in the environment, not on command lines that ps shows.
	n.env = append(os.Environ(), "RTBUS_ADMIN_TOKEN="+s.adminToken)
	// No JWT secret: the nodes make one for the cluster (a token from one is valid on all).
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("=== log of node %s (%s) ===\n%s", n.name, n.url, tail(n.logs.String(), 400))
		}
	})
	t.Cleanup(n.kill) // registered after the log dump: runs before it
	return n
}

// tail returns the last max lines of s.
func tail(s string, max int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > max {
		lines = append([]string{fmt.Sprintf("[%d lines left out]", len(lines)-max)}, lines[len(lines)-max:]...)
	}
	return strings.Join(lines, "\n")
}

// start starts the node's process (again, after stop or kill).
func (n *node) start() {
	n.t.Helper()
	if n.running() {
		n.t.Fatalf("node %s already running", n.name)
	}
	n.runs++
	fmt.Fprintf(n.logs, "=== start %d: rtbusd %s\n", n.runs, strings.Join(n.args, " "))
	cmd := exec.Command(buildDaemon(n.t), n.args...)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		err := cmd.Wait()
		fmt.Fprintf(n.logs, "=== exit: %v\n", err)
		close(exited)
	}(n.exited)
}

func (n *node) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill ends the process at once (SIGKILL), as a crash or a power cut would.
func (n *node) kill() {
	if !n.running() {
		return
	}
	n.cmd.Process.Kill()
	<-n.exited
}

// stop ends the process with SIGTERM, as an operator does, and fails if it does not exit
// within 20 s or exits with an error.
func (n *node) stop() {
	n.t.Helper()
	if !n.running() {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		if !n.cmd.ProcessState.Success() {
			n.t.Errorf("node %s exited with %v", n.name, n.cmd.ProcessState)
		}
	case <-time.After(20 * time.Second):
		n.kill()
		n.t.Fatalf("node %s still running 20 s after SIGTERM", n.name)
	}
}

// ready reports whether /readyz answers 200.
func (n *node) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// waitReady polls /readyz until it answers 200; it fails if the process exits or the bound
// passes.
func (n *node) waitReady(bound time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(bound)
	for !n.ready() {
		select {
		case <-n.exited:
			n.t.Fatalf("node %s exited before it was ready", n.name)
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("node %s not ready within %v", n.name, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually polls cond until it holds; it fails with what after bound.
func eventually(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
