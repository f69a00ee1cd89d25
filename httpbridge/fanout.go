package httpbridge

import (
	"github.com/rtbus/rtbus/httpbridge/internal/natsfan"
	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// fanout reaches the open streams of every node serving the tenants with what is not stored:
// ephemeral messages, kills, presence. Every sender goes through it (push, the internal API,
// logout, revocation, tenant settings); durable publications do not (each node's own log
// applier hands them to its hub). Chosen once in New: the local hub on a single node, plain
// NATS subjects between nodes in cluster mode (natsfan).
type fanout interface {
	// Push hands an ephemeral message to the streams it addresses. With count, it returns how
	// many streams took it: in cluster mode this node's plus those of the nodes that answered
	// within natsfan's deadline (the others still get it, uncounted). Without count it does
	// not wait and returns this node's count.
	Push(m sse.Message, count bool) int
	// Conns lists open streams (presence); Presence.Nodes says who answered in cluster mode.
	Conns(tenant, userID string) natsfan.Presence
	KillSession(session string)
	KillUser(userID string)
	CloseAnonymous(tenant string)
	Close()
}

// clusterDeadline bounds how long a presence query or a counted push waits for the other
// nodes' answers.
const clusterDeadline = natsfan.DefaultDeadline

// newFanout returns the fan-out for s's mode.
func newFanout(s *Server) (fanout, error) {
	if s.cfg.Cluster == nil {
		return localFanout{s.hub}, nil
	}
	return natsfan.New(s.cfg.Cluster.Conn(), s.hub, natsfan.Options{
		Node: s.cfg.Cluster.NodeName(), Deadline: clusterDeadline, Logger: s.cfg.Logger,
	})
}

// localFanout is the single-node fan-out: this process's hub.
type localFanout struct{ hub *sse.Hub }

func (l localFanout) Push(m sse.Message, _ bool) int { return l.hub.Publish(m) }

func (l localFanout) Conns(tenant, userID string) natsfan.Presence {
	cs := l.hub.Conns(tenant, userID)
	p := natsfan.Presence{Conns: make([]natsfan.Conn, len(cs))}
	for i, c := range cs {
		p.Conns[i].Conn = c
	}
	return p
}

func (l localFanout) KillSession(session string)   { l.hub.KillSession(session) }
func (l localFanout) KillUser(userID string)       { l.hub.KillUser(userID) }
func (l localFanout) CloseAnonymous(tenant string) { l.hub.CloseAnonymous(tenant) }
func (l localFanout) Close()                       {}
