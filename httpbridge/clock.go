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
	// At calls f in its own goroutine once the clock reads t or later (at once if it does
	// already), unless stop is called first (stop reports whether it prevented the call, as
	// time.Timer.Stop does). The time is absolute so that a test clock advanced between the
	// caller's reading of Now and this call cannot make the wait longer.
	At(t time.Time, f func()) (stop func() bool)
}

// ntpClock waits on the monotonic local clock: the NTP offset changes the reading, not the
// passing of time. The scheduler re-reads Now when a timer fires, so an offset that moved
// meanwhile costs one more, shorter, wait.
type ntpClock struct{ c *ntpclock.Clock }

func (n ntpClock) Now() time.Time { return n.c.Now() }

func (n ntpClock) At(t time.Time, f func()) func() bool {
	return time.AfterFunc(t.Sub(n.c.Now()), f).Stop
}
