package e2e

import (
	"testing"
	"time"
)

// TestSingleNodeKilled: the single-node counterpart of TestClusterNodeKilled: rtbusd killed
// (SIGKILL) while a client inserts and others follow; once restarted, every acknowledged
// event is there and reaches every client, which resumes from its cursor, exactly once.
func TestSingleNodeKilled(t *testing.T) {
	s := startSingle(t)
	n := s.at(0)
	u := signup(t, n, n, uname(t, "ann"), "acme")
	var fs []*follower
	for _, tr := range transports {
		fs = append(fs, follow(t, tr, n, u))
	}
	w := startWriter(t, u, "c", s.nodes, 0)
	w.waitAcks(t, 20, 30*time.Second, "before the kill")
	n.kill()
	n.start()
	n.waitReady(60 * time.Second)
	w.waitAcks(t, 20, 30*time.Second, "after the restart")
	want := w.ids()
	for _, f := range fs {
		f.resume(n)
		f.await(want, 30*time.Second)
	}
	checkCollection(t, n, u, "c", want, 10*time.Second)
}
