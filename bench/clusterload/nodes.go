package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// node is one rtbusd process on loopback; its ports and data directory survive a restart.
type node struct {
	name, url, iurl string
	args            []string
	cmd             *exec.Cmd
	exited          chan struct{}
	log             *os.File
}

// system is a single node or a cluster.
type system struct {
	label string
	nodes []*node
}

const adminToken = "bench-admin-token-0123456789"

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	var ports []int
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startSystem starts n nodes (n == 1: a single node, no cluster flags) under dir and waits
// until each answers /readyz.
// logLevel is the nodes' -log-level.
var logLevel = "warn"

func startSystem(bin, dir, label string, n int) (*system, error) {
	ports, err := freePorts(3 * n)
	if err != nil {
		return nil, err
	}
	s := &system{label: label}
	for i := range n {
		nd := &node{
			name: fmt.Sprintf("n%d", i+1),
			url:  fmt.Sprintf("http://127.0.0.1:%d", ports[i]),
			iurl: fmt.Sprintf("http://127.0.0.1:%d", ports[n+i]),
		}
		ndir := filepath.Join(dir, label, nd.name)
		if err := os.MkdirAll(ndir, 0o700); err != nil {
			return nil, err
		}
		nd.args = []string{
			"-B", filepath.Join(ndir, "bus.sock"),
			"-http", fmt.Sprintf("127.0.0.1:%d", ports[i]),
			"-internal", fmt.Sprintf("127.0.0.1:%d", ports[n+i]),
			"-data-dir", filepath.Join(ndir, "data"),
			"-ntp", "off", "-log-level", logLevel, "-http-max-conns", "0",
		}
		if n > 1 {
			var peers []string
			for j := range n {
				if j != i {
					peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[2*n+j]))
				}
			}
			nd.args = append(nd.args, "-cluster", "bench", "-cluster-node", nd.name,
				"-cluster-listen", fmt.Sprintf("127.0.0.1:%d", ports[2*n+i]), "-cluster-peers", strings.Join(peers, ","))
		}
		if nd.log, err = os.Create(filepath.Join(ndir, "rtbusd.log")); err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, nd)
	}
	for _, nd := range s.nodes {
		if err := nd.start(bin); err != nil {
			s.stop()
			return nil, err
		}
	}
	for _, nd := range s.nodes {
		if err := nd.waitReady(120 * time.Second); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

func (n *node) start(bin string) error {
	cmd := exec.Command(bin, n.args...)
	cmd.Env = append(os.Environ(), "RTBUS_ADMIN_TOKEN="+adminToken)
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := cmd.Start(); err != nil {
		return err
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(n.exited)
	return nil
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

func (n *node) kill() {
	if n.running() {
		n.cmd.Process.Kill()
		<-n.exited
	}
}

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

func (n *node) waitReady(bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for !n.ready() {
		if !n.running() {
			return fmt.Errorf("rtbusd %s exited (log: %s)", n.name, n.log.Name())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rtbusd %s not ready within %v (log: %s)", n.name, bound, n.log.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// stop ends every node with SIGTERM (SIGKILL after 10 s).
func (s *system) stop() {
	for _, n := range s.nodes {
		if n.running() {
			n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range s.nodes {
		if n.running() {
			select {
			case <-n.exited:
			case <-time.After(10 * time.Second):
				n.kill()
			}
		}
		n.log.Close()
	}
}

// streamLeader asks the nodes' internal API which node leads the event log's stream,
// waiting up to 30 s for one.
func (s *system) streamLeader() (*node, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := s.streamLeaderNow(); err == nil && n != nil {
			return n, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, errors.New("no node reports a leader of RTBUS_EVENTS (GET /v1/cluster)")
}

// clusterStatus is the part of GET /v1/cluster the benchmarks read.
type clusterStatus struct {
	MetaLeader string `json:"meta_leader"`
	Streams    []struct {
		Name, Leader string
		Elected      *time.Time // when the leader was elected (JetStream's advisory)
	}
}

// statuses asks each running node for its view of the cluster.
func (s *system) statuses() []clusterStatus {
	var out []clusterStatus
	for _, n := range s.nodes {
		if !n.running() {
			continue
		}
		req, _ := http.NewRequest("GET", n.iurl+"/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		var st clusterStatus
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err == nil {
			out = append(out, st)
		}
	}
	return out
}

// streamLeaderNow is the running node that a running node reports as the leader of the
// event log's stream now; nil when none does.
func (s *system) streamLeaderNow() (*node, error) {
	sts := s.statuses()
	if len(sts) == 0 {
		return nil, errors.New("no node answers GET /v1/cluster")
	}
	for _, st := range sts {
		for _, str := range st.Streams {
			for _, m := range s.nodes {
				if str.Name == "RTBUS_EVENTS" && str.Leader == m.name && m.running() {
					return m, nil
				}
			}
		}
	}
	return nil, nil
}

// metaLeader is the node name that the running nodes report as JetStream's meta leader.
func (s *system) metaLeader() string {
	for _, st := range s.statuses() {
		if st.MetaLeader != "" {
			return st.MetaLeader
		}
	}
	return ""
}

// elected is when the event log's stream elected its current leader, as the running nodes
// heard it; zero when none says.
func (s *system) elected() time.Time {
	for _, st := range s.statuses() {
		for _, str := range st.Streams {
			if str.Name == "RTBUS_EVENTS" && str.Elected != nil {
				return *str.Elected
			}
		}
	}
	return time.Time{}
}
