package cluster

import (
	"fmt"
	"sync"
	"time"
	_ "unsafe" // go:linkname
)

// DefaultElectionTimeout is the embedded NATS server's election timeout in rtbus: a follower
// that has heard nothing from its raft leader for a random time between this and twice this
// calls an election. NATS's own timers (4 to 9 s) are sized for servers holding thousands of
// raft groups; an rtbus cluster holds four (JetStream's meta group, the event log and two
// buckets), and the wait is most of a failover's time: from a leader's crash to the next
// acknowledged insert, 2 to 4 s instead of 4 to 9.
const DefaultElectionTimeout = 2 * time.Second

// MinElectionTimeout is the shortest election timeout Start accepts: NATS leaders send a
// heartbeat every second, so a shorter timeout would call an election after one late one.
const MinElectionTimeout = 2 * time.Second

// nats-server keeps its raft timers in package variables it does not export, and sets them
// only in its own tests. They are reached here by name: a nats-server release that renames
// them fails to link, loudly, and TestElectionTimers checks what they hold.
var (
	//go:linkname natsMinElectionTimeout github.com/nats-io/nats-server/v2/server.minElectionTimeout
	natsMinElectionTimeout time.Duration
	//go:linkname natsMaxElectionTimeout github.com/nats-io/nats-server/v2/server.maxElectionTimeout
	natsMaxElectionTimeout time.Duration
)

// The timers are the process's, shared by every embedded server in it; they change only while
// no embedded server runs, so none of them ever reads a timer being written.
var (
	electionMu      sync.Mutex
	embeddedRunning int
)

func init() { setElectionTimeout(DefaultElectionTimeout) }

func setElectionTimeout(d time.Duration) {
	natsMinElectionTimeout, natsMaxElectionTimeout = d, 2*d
}

// useElectionTimeout sets the timers for an embedded server about to start (0: the default)
// and counts it as running until releaseElectionTimeout.
func useElectionTimeout(d time.Duration) error {
	if d == 0 {
		d = DefaultElectionTimeout
	}
	if d < MinElectionTimeout {
		return fmt.Errorf("cluster: election timeout %v: at least %v (NATS leaders send a heartbeat every second)", d, MinElectionTimeout)
	}
	electionMu.Lock()
	defer electionMu.Unlock()
	if d != natsMinElectionTimeout {
		if embeddedRunning > 0 {
			return fmt.Errorf("cluster: election timeout %v: another embedded server in this process runs with %v", d, natsMinElectionTimeout)
		}
		setElectionTimeout(d)
	}
	embeddedRunning++
	return nil
}

func releaseElectionTimeout() {
	electionMu.Lock()
	embeddedRunning--
	electionMu.Unlock()
}
