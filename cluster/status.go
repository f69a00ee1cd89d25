package cluster

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Status is one node's view of the cluster: what `rtbus cluster status` prints and the
// internal API's GET /v1/cluster serves.
type Status struct {
	Node    string `json:"node"`
	Cluster string `json:"cluster,omitempty"` // the embedded server's cluster name
	// Mode is "embedded" (this process runs a nats-server) or "external" (-nats-url).
	Mode     string `json:"mode"`
	Replicas int    `json:"replicas"` // of the streams and buckets rtbus creates
	Ready    bool   `json:"ready"`    // JetStream answers: it has a meta leader
	Error    string `json:"error,omitempty"`
	// MetaLeader is the node that leads JetStream's meta group; with an external cluster the
	// client cannot see it and it is empty.
	MetaLeader string `json:"meta_leader,omitempty"`
	// ClusterSize is the number of nodes the meta group knows (embedded only).
	ClusterSize int `json:"cluster_size,omitempty"`
	// Routes are the peers this node's embedded server is connected to.
	Routes  []Route        `json:"routes"`
	Streams []StreamStatus `json:"streams"`
	// IndexLag is how many stream sequences this node's index has yet to apply; absent when
	// nothing reports it (see SetIndexLag).
	IndexLag *uint64   `json:"index_lag,omitempty"`
	Checked  time.Time `json:"checked"`
}

// Route is a connected peer.
type Route struct {
	Node string `json:"node"`
	Addr string `json:"addr"`
	RTT  string `json:"rtt,omitempty"`
}

// StreamStatus is an rtbus stream (the event log, or a key-value bucket's stream) and who
// holds it.
type StreamStatus struct {
	Name   string `json:"name"`
	Leader string `json:"leader,omitempty"`
	// Elected is when the leader was elected, as JetStream announced it to this node; absent
	// when the node did not hear it (it started later).
	Elected  *time.Time `json:"elected,omitempty"`
	Replicas []Replica  `json:"replicas"` // the followers, as the leader sees them
	Messages uint64     `json:"messages"`
	LastSeq  uint64     `json:"last_seq"`
}

// Replica is a follower of a stream.
type Replica struct {
	Node    string `json:"node"`
	Current bool   `json:"current"` // caught up and seen recently
	Offline bool   `json:"offline,omitempty"`
	Lag     uint64 `json:"lag,omitempty"` // operations behind the leader
}

// State words a replica's state: current, lagging (N), offline.
func (r Replica) State() string {
	switch {
	case r.Offline:
		return "offline"
	case r.Current:
		return "current"
	case r.Lag > 0:
		return "lagging (" + strconv.FormatUint(r.Lag, 10) + ")"
	}
	return "lagging"
}

// Status gathers the node's view now: readiness, routes, the meta leader and every rtbus
// stream's leader and replicas. It answers within ctx even when JetStream does not (then
// Ready is false and Error says why).
func (n *Node) Status(ctx context.Context) Status {
	st := n.status(ctx)
	if f := n.indexLag.Load(); f != nil {
		lag := (*f)()
		st.IndexLag = &lag
	}
	return st
}

// status is Status without the index lag, for the watcher: the lag's function belongs to
// the bridge, which may not be ready for it while it starts.
func (n *Node) status(ctx context.Context) Status {
	st := Status{Node: n.NodeName(), Mode: "external", Replicas: n.Replicas(), Checked: time.Now().UTC(), Routes: []Route{}, Streams: []StreamStatus{}}
	if n.srv != nil {
		st.Mode, st.Cluster = "embedded", n.opts.Name
		st.Routes = n.routes()
		if !n.srv.JetStreamIsClustered() { // a cluster of one: no meta group, it leads itself
			st.MetaLeader, st.ClusterSize = st.Node, 1
		} else if jsz, err := n.srv.Jsz(&server.JSzOptions{}); err == nil && jsz.Meta != nil {
			st.MetaLeader, st.ClusterSize = jsz.Meta.Leader, jsz.Meta.Size
		}
	}
	if err := n.Ready(ctx); err != nil {
		st.Error = err.Error()
		return st
	}
	st.Ready = true
	l := n.js.ListStreams(ctx)
	for si := range l.Info() {
		if !rtbusStream(si.Config.Name) {
			continue
		}
		ss := StreamStatus{Name: si.Config.Name, Replicas: []Replica{}, Messages: si.State.Msgs, LastSeq: si.State.LastSeq}
		if n.srv != nil && !n.srv.JetStreamIsClustered() {
			ss.Leader = st.Node // a cluster of one holds every stream itself
		} else if c := si.Cluster; c != nil {
			ss.Leader, ss.Elected = c.Leader, n.elected(si.Config.Name, c.Leader)
			for _, p := range c.Replicas {
				ss.Replicas = append(ss.Replicas, Replica{Node: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag})
			}
		}
		st.Streams = append(st.Streams, ss)
	}
	if err := l.Err(); err != nil && err != jetstream.ErrEndOfData {
		st.Error = "listing streams: " + err.Error()
	}
	slices.SortFunc(st.Streams, func(a, b StreamStatus) int { return strings.Compare(a.Name, b.Name) })
	return st
}

// rtbusStream: a stream that rtbus made (its event log, or a bucket's KV_ stream), told
// apart from other applications' in a shared NATS account by the prefix.
func rtbusStream(name string) bool {
	name = strings.TrimPrefix(name, "KV_")
	return len(name) >= len(Prefix) && strings.EqualFold(name[:len(Prefix)], Prefix)
}

// routes are the peers the embedded server is connected to, one entry per peer (a peer may
// have several pooled route connections).
func (n *Node) routes() []Route {
	out := []Route{}
	rz, err := n.srv.Routez(nil)
	if err != nil {
		return out
	}
	seen := map[string]bool{}
	for _, r := range rz.Routes {
		if r.RemoteName == "" || seen[r.RemoteName] {
			continue
		}
		seen[r.RemoteName] = true
		out = append(out, Route{Node: r.RemoteName, Addr: net.JoinHostPort(r.IP, strconv.Itoa(r.Port)), RTT: r.RTT})
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// SetIndexLag gives the node a function that tells how many stream sequences this node's
// index has yet to apply; Status and the rtbus_cluster_index_lag metric report it. The
// function is called at scrape time and must be cheap. nil removes it.
func (n *Node) SetIndexLag(f func() uint64) {
	if f == nil {
		n.indexLag.Store(nil)
		return
	}
	n.indexLag.Store(&f)
}

// StreamLastSeq is the last sequence of the named stream in this node's own copy (embedded
// server), or as the watcher last saw it (external NATS; at most a few seconds old); 0 when
// unknown. It does not block, for metrics: an index's lag is StreamLastSeq minus what the
// index applied.
func (n *Node) StreamLastSeq(name string) uint64 {
	if n.srv != nil {
		if d, err := n.srv.JszAccount(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true}); err == nil {
			for _, s := range d.Streams {
				if s.Name == name {
					return s.State.LastSeq
				}
			}
			return 0
		}
	}
	for _, s := range n.LastStatus().Streams {
		if s.Name == name {
			return s.LastSeq
		}
	}
	return 0
}
