package cluster

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
)

// leaderElectedSubject is where JetStream announces, in the stream's account, that one of
// its streams elected a leader (server.JSAdvisoryStreamLeaderElectedPre).
const leaderElectedSubject = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.>"

// election is the last leader election of a stream this node heard of.
type election struct {
	leader string
	at     time.Time
}

// watchElections logs each rtbus stream's leader election the moment JetStream announces
// it (the watcher's own look, every few seconds, would log it up to that much later), and
// keeps its time for Status: a failover's length is then read off, not guessed. With an
// external cluster whose user may not subscribe there, the watcher's look is all there is.
func (n *Node) watchElections() {
	_, err := n.nc.Subscribe(leaderElectedSubject, func(m *nats.Msg) {
		var a struct {
			Stream string    `json:"stream"`
			Leader string    `json:"leader"`
			Time   time.Time `json:"timestamp"`
		}
		if json.Unmarshal(m.Data, &a) != nil || !rtbusStream(a.Stream) || a.Leader == "" {
			return
		}
		n.elections.Store(a.Stream, election{a.Leader, a.Time})
		if n.loggedLeader(a.Stream, a.Leader) {
			n.log.Info("cluster: stream leader", "stream", a.Stream, "leader", a.Leader, "this_node", a.Leader == n.NodeName(), "elected", a.Time.UTC().Format(time.RFC3339Nano))
		}
	})
	if err != nil {
		n.log.Debug("cluster: not told of leader elections", "error", err)
	}
}

// loggedLeader records that the log now names leader as stream's; false when it already did.
func (n *Node) loggedLeader(stream, leader string) bool {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	if n.logged == nil {
		n.logged = map[string]string{}
	}
	if n.logged[stream] == leader {
		return false
	}
	n.logged[stream] = leader
	return true
}

// elected is when this node heard that stream elected its current leader; nil when it did
// not (the leader was elected before this node started, or no advisory came).
func (n *Node) elected(stream, leader string) *time.Time {
	v, ok := n.elections.Load(stream)
	if !ok || v.(election).leader != leader {
		return nil
	}
	at := v.(election).at.UTC()
	return &at
}
