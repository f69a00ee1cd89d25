package cluster

import (
	"context"
	"errors"
	"time"
)

// How often the watcher asks whether JetStream answers, and who leads what.
const (
	readyEvery   = time.Second
	leadersEvery = 3 * time.Second
	// electionGrace is how long a node that was ready stays so while JetStream does not
	// answer but the routes still reach a majority: the meta leader died and the others are
	// electing one, which takes a few seconds. Answering 503 meanwhile would take every node
	// out of the load balancer at once, though streams and reads go on.
	electionGrace = 10 * time.Second
)

// watch runs from Start to Close: every second it asks whether JetStream answers (Ready) and
// keeps the answer for Readiness; every few seconds it gathers the Status and logs what
// changed: readiness, the routes, the meta leader, each stream's leader.
func (n *Node) watch(ctx context.Context) {
	defer close(n.watchDone)
	var (
		prev     Status
		wasReady = false
		since    = time.Now()
		logged   time.Time
		lastLead time.Time
		failing  time.Time // since when JetStream has not answered a ready node, within the grace
	)
	tick := time.NewTicker(readyEvery)
	defer tick.Stop()
	for {
		c, cancel := context.WithTimeout(ctx, readyEvery)
		err := n.Ready(c)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil, errors.Is(err, errNoQuorum), !wasReady:
			failing = time.Time{}
		case failing.IsZero():
			failing = time.Now()
			n.log.Info("cluster: JetStream does not answer; still ready for a few seconds (a leader election?)", "node", n.NodeName(), "error", err)
			err = nil
		case time.Since(failing) < electionGrace:
			err = nil
		}
		n.setReadiness(err)
		switch ready := err == nil; {
		case ready && !wasReady:
			n.log.Info("cluster: JetStream ready", "node", n.NodeName(), "after", time.Since(since).Round(time.Millisecond))
			lastLead = time.Time{} // gather the leaders at once
		case !ready && wasReady:
			n.log.Warn("cluster: JetStream not ready", "node", n.NodeName(), "error", err)
			since, logged = time.Now(), time.Now()
		case !ready && time.Since(logged) >= 5*time.Second:
			n.log.Info("cluster: waiting for JetStream to elect a leader", "node", n.NodeName(), "waited", time.Since(since).Round(time.Second), "error", err)
			logged = time.Now()
		}
		wasReady = err == nil
		if time.Since(lastLead) >= leadersEvery {
			lastLead = time.Now()
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			st := n.status(c)
			cancel()
			if ctx.Err() != nil {
				return
			}
			n.logChanges(prev, st)
			n.last.Store(&st)
			prev = st
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// logChanges logs what differs from the previous Status: peers joining or leaving, the meta
// leader, each rtbus stream's leader.
func (n *Node) logChanges(prev, cur Status) {
	if n.srv != nil {
		was := map[string]bool{}
		for _, r := range prev.Routes {
			was[r.Node] = true
		}
		now := map[string]bool{}
		for _, r := range cur.Routes {
			now[r.Node] = true
			if !was[r.Node] {
				n.log.Info("cluster: route up", "peer", r.Node, "addr", r.Addr, "routes", len(cur.Routes))
			}
		}
		for _, r := range prev.Routes {
			if !now[r.Node] {
				n.log.Warn("cluster: route down", "peer", r.Node, "routes", len(cur.Routes))
			}
		}
		if cur.MetaLeader != prev.MetaLeader {
			if cur.MetaLeader == "" {
				n.log.Warn("cluster: JetStream has no meta leader")
			} else {
				n.log.Info("cluster: JetStream meta leader", "leader", cur.MetaLeader, "this_node", cur.MetaLeader == cur.Node)
			}
		}
	}
	if !cur.Ready {
		return // no stream list: leaders unknown, not changed
	}
	was := map[string]string{}
	for _, s := range prev.Streams {
		was[s.Name] = s.Leader
	}
	for _, s := range cur.Streams {
		if l, ok := was[s.Name]; (!ok || l != s.Leader) && n.loggedLeader(s.Name, s.Leader) {
			if s.Leader == "" {
				n.log.Warn("cluster: stream has no leader", "stream", s.Name)
			} else {
				n.log.Info("cluster: stream leader", "stream", s.Name, "leader", s.Leader, "this_node", s.Leader == cur.Node)
			}
		}
	}
}

// setReadiness records the latest answer of the periodic check.
func (n *Node) setReadiness(err error) {
	if err == nil {
		n.ready.Store(nil)
		return
	}
	n.ready.Store(&err)
}

// Readiness is the answer of the latest periodic check (every second), an error wrapping
// ErrNotReady or nil: not ready until JetStream first answers; then not ready at once when
// the routes reach no majority, and when JetStream has not answered for electionGrace (10 s)
// though they do. It does not block, for /readyz.
func (n *Node) Readiness() error {
	if p := n.ready.Load(); p != nil {
		return *p
	}
	return nil
}

// LastStatus is the Status the watcher gathered last (every few seconds); zero before the
// first. It does not block, for metrics.
func (n *Node) LastStatus() Status {
	if p := n.last.Load(); p != nil {
		return *p
	}
	return Status{}
}
