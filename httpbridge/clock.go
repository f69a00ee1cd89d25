package httpbridge

import (
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/ntpclock"
)

// Clock tells the time for scheduling and tokens. The Server's default is the local clock
// corrected by NTP (Config.NTPServers); tests pass a clock they advance themselves.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed on this clock, unless stop is
	// called first (stop reports whether it prevented the call, as time.Timer.Stop does).
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// ntpClock waits on the monotonic local clock: the NTP offset changes the reading, not the
// passing of time. The scheduler re-reads Now when a timer fires, so an offset that moved
// meanwhile costs one more, shorter, wait.
type ntpClock struct{ c *ntpclock.Clock }

func (n ntpClock) Now() time.Time { return n.c.Now() }

func (n ntpClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
