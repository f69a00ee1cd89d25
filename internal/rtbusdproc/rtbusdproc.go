// Package rtbusdproc runs rtbusd processes on loopback for the programs that drive real
// daemons from outside: the tests across processes (cluster/e2e) and the cluster load tool
// (bench/clusterload). It builds the flags of a single node or of a cluster member, starts,
// signals and kills a process, waits for /readyz, and asks a node which one leads a stream.
// Its FreePorts serves every test that names a port for a server to bind later.
// It returns errors instead of failing a test, so that a tool can use it; it is no part of
// rtbusd itself.
package rtbusdproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// FreePorts returns n distinct loopback TCP ports that were free a moment ago. Where the
// system says which ports it hands out by itself (Linux's ip_local_port_range: the source
// port of each outgoing connection, and the port of each listener on port 0), they are
// drawn at random from below that range: a port given to a process that binds it later
// could otherwise be taken meanwhile by a connection that another test opens (a cluster
// test in CI once lost a node's HTTP port that way).
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	lo, hi := portsBelowEphemeral()
	seen := map[int]bool{}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi > lo && tries < 100*n {
			p := lo + rand.IntN(hi-lo)
			if seen[p] {
				continue
			}
			seen[p] = true
			addr = fmt.Sprintf("127.0.0.1:%d", p)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr != "127.0.0.1:0" {
				continue // in use: draw another
			}
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portsBelowEphemeral returns the ports [lo, hi) below the system's ephemeral range, or
// lo == hi where it cannot tell or leaves too few.
func portsBelowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil || first < 12000 {
		return 0, 0
	}
	return 10000, first
}

// Args are the flags of a node whose files are under dir (its bus socket; dataDir holds its
// data) and whose HTTP bridge and internal API listen on 127.0.0.1 ports, with NTP off.
func Args(dir, dataDir string, httpPort, internalPort int) []string {
	return []string{
		"-B", filepath.Join(dir, "bus.sock"),
		"-http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"-internal", fmt.Sprintf("127.0.0.1:%d", internalPort),
		"-data-dir", dataDir,
		"-ntp", "off",
	}
}

// ClusterArgs are the flags that make a node the member name of cluster, its route listener
// at listen, routed to peers.
func ClusterArgs(cluster, name, listen string, peers []string) []string {
	return []string{"-cluster", cluster, "-cluster-node", name, "-cluster-listen", listen,
		"-cluster-peers", strings.Join(peers, ",")}
}

// Proc is one rtbusd process; Start starts it again after it ended, with the same Args and
// Env. Its methods are for one goroutine (OnExit runs on another).
type Proc struct {
	Bin  string   // the rtbusd binary
	Args []string // its flags
	Env  []string // its environment; nil: this process's
	Out  io.Writer
	// OnExit, if set, is called with Wait's error when the process ends.
	OnExit func(error)

	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts the process; it must not be running.
func (p *Proc) Start() error {
	if p.Running() {
		return fmt.Errorf("rtbusdproc: %s already running", p.Bin)
	}
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Env = p.Env
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}, onExit func(error)) {
		err := cmd.Wait()
		if onExit != nil {
			onExit(err)
		}
		close(exited)
	}(p.exited, p.OnExit)
	return nil
}

// Running reports whether the process was started and has not ended.
func (p *Proc) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill ends the process at once (SIGKILL), as a crash would, and waits for it.
func (p *Proc) Kill() {
	if p.Running() {
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// Signal sends sig to the running process.
func (p *Proc) Signal(sig os.Signal) {
	if p.Running() {
		p.cmd.Process.Signal(sig)
	}
}

// ErrStillRunning: Stop's signal did not end the process in time (it was killed).
var ErrStillRunning = errors.New("rtbusdproc: still running after the signal")

// Stop sends sig and waits up to bound for the process to end; then it kills it and
// returns ErrStillRunning. It returns an error too when the process ends unsuccessfully.
func (p *Proc) Stop(sig os.Signal, bound time.Duration) error {
	if !p.Running() {
		return nil
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		if !p.cmd.ProcessState.Success() {
			return fmt.Errorf("rtbusd exited with %v", p.cmd.ProcessState)
		}
		return nil
	case <-time.After(bound):
		p.Kill()
		return fmt.Errorf("%w (%v, %v)", ErrStillRunning, sig, bound)
	}
}

// Ready reports whether the bridge at url answers GET /readyz with 200 within a second.
func Ready(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// WaitReady polls the bridge at url until it is Ready; an error if p ends first or bound
// passes.
func (p *Proc) WaitReady(url string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for !Ready(url) {
		if !p.Running() {
			return fmt.Errorf("rtbusd (%s) exited before it was ready", url)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rtbusd (%s) not ready within %v", url, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Status is the part of a node's GET /v1/cluster (internal API) that tests and tools read.
type Status struct {
	MetaLeader string `json:"meta_leader"` // JetStream's meta leader, by node name
	Streams    []struct {
		Name, Leader string
		Elected      *time.Time // when the leader was elected, if the node heard it
	}
	Routes []struct{ Node string } // the peers this node's server is routed to
}

// StreamLeader is the name of the node that leads stream, "" if none.
func (st Status) StreamLeader(stream string) string {
	for _, s := range st.Streams {
		if s.Name == stream {
			return s.Leader
		}
	}
	return ""
}

// ClusterStatus asks the internal API at iurl, with the admin token, for its node's view of
// the cluster.
func ClusterStatus(hc *http.Client, iurl, adminToken string) (Status, error) {
	req, _ := http.NewRequest("GET", iurl+"/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := hc.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return Status{}, fmt.Errorf("GET %s/v1/cluster: %s", iurl, resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Status{}, fmt.Errorf("GET %s/v1/cluster: %v", iurl, err)
	}
	return st, nil
}
