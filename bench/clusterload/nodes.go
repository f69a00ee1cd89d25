package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rtbus/rtbus/internal/rtbusdproc"
)

// node is one rtbusd process on loopback; its ports and data directory survive a restart.
type node struct {
	name, url, iurl string
	proc            rtbusdproc.Proc
	log             *os.File
}

// system is a single node or a cluster.
type system struct {
	label string
	nodes []*node
}

const adminToken = "bench-admin-token-0123456789"

// logLevel is the nodes' -log-level.
var logLevel = "warn"

// startSystem starts n nodes (n == 1: a single node, no cluster flags) under dir and waits
// until each answers /readyz.
func startSystem(bin, dir, label string, n int) (*system, error) {
	ports, err := rtbusdproc.FreePorts(3 * n)
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
		args := append(rtbusdproc.Args(ndir, filepath.Join(ndir, "data"), ports[i], ports[n+i]),
			"-log-level", logLevel, "-http-max-conns", "0")
		if n > 1 {
			var peers []string
			for j := range n {
				if j != i {
					peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[2*n+j]))
				}
			}
			args = append(args, rtbusdproc.ClusterArgs("bench", nd.name, fmt.Sprintf("127.0.0.1:%d", ports[2*n+i]), peers)...)
		}
		if nd.log, err = os.Create(filepath.Join(ndir, "rtbusd.log")); err != nil {
			return nil, err
		}
		nd.proc = rtbusdproc.Proc{Bin: bin, Args: args, Env: append(os.Environ(), "RTBUS_ADMIN_TOKEN="+adminToken), Out: nd.log}
		s.nodes = append(s.nodes, nd)
	}
	for _, nd := range s.nodes {
		if err := nd.start(); err != nil {
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

func (n *node) start() error { return n.proc.Start() }

func (n *node) running() bool { return n.proc.Running() }

func (n *node) kill() { n.proc.Kill() }

func (n *node) waitReady(bound time.Duration) error {
	if err := n.proc.WaitReady(n.url, bound); err != nil {
		return fmt.Errorf("%s: %w (log: %s)", n.name, err, n.log.Name())
	}
	return nil
}

// stop ends every node with SIGTERM (SIGKILL after 10 s).
func (s *system) stop() {
	for _, n := range s.nodes {
		n.proc.Signal(syscall.SIGTERM)
	}
	for _, n := range s.nodes {
		n.proc.Stop(syscall.SIGTERM, 10*time.Second)
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

// statuses asks each running node for its view of the cluster.
func (s *system) statuses() []rtbusdproc.Status {
	var out []rtbusdproc.Status
	for _, n := range s.nodes {
		if !n.running() {
			continue
		}
		if st, err := rtbusdproc.ClusterStatus(client, n.iurl, adminToken); err == nil {
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
		name := st.StreamLeader("RTBUS_EVENTS")
		for _, m := range s.nodes {
			if name != "" && name == m.name && m.running() {
				return m, nil
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
