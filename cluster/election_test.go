package cluster

import (
	"strings"
	"testing"
	"time"
	_ "unsafe" // go:linkname
)

//go:linkname natsRandElectionTimeout github.com/nats-io/nats-server/v2/server.randElectionTimeout
func natsRandElectionTimeout() time.Duration

// nats-server's own draw of an election timeout follows the timers rtbus sets: the link
// reaches the variables nats-server reads, not copies.
func TestElectionTimers(t *testing.T) {
	lo, hi := DefaultElectionTimeout, 2*DefaultElectionTimeout
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := natsRandElectionTimeout()
		if d < lo || d >= hi {
			t.Fatalf("nats-server drew an election timeout of %v, want [%v, %v)", d, lo, hi)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Fatalf("%d distinct timeouts in 1000 draws: not random", len(seen))
	}

	// Another timeout while none runs: taken; nats-server draws from it.
	if err := useElectionTimeout(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if d := natsRandElectionTimeout(); d < 3*time.Second || d >= 6*time.Second {
		t.Fatalf("after 3s: nats-server drew %v", d)
	}
	// A different one while a server runs: refused, the running one's unchanged.
	err := useElectionTimeout(0)
	if err == nil || !strings.Contains(err.Error(), "another embedded server") {
		t.Fatalf("a second timeout while one runs: %v", err)
	}
	if err := useElectionTimeout(3 * time.Second); err != nil { // the same: fine
		t.Fatal(err)
	}
	releaseElectionTimeout()
	releaseElectionTimeout()
	if err := useElectionTimeout(0); err != nil { // back to the default
		t.Fatal(err)
	}
	releaseElectionTimeout()
	if natsMinElectionTimeout != DefaultElectionTimeout || natsMaxElectionTimeout != 2*DefaultElectionTimeout {
		t.Fatalf("timers %v-%v after the default", natsMinElectionTimeout, natsMaxElectionTimeout)
	}
	if err := useElectionTimeout(time.Second); err == nil || !strings.Contains(err.Error(), "at least 2s") {
		t.Fatalf("1s: %v", err)
	}
}
