package httpbridge

import (
	"log/slog"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// maxWait bounds one timer, so that a correction of the NTP offset (which moves Now, not
// the monotonic timers) delays a publication by at most this much.
const maxWait = time.Minute

// scheduler publishes future events when they fall due: one goroutine waits on a timer set
// for the store's next due time; inserts of future events and cancellations wake it to
// re-read that time. It publishes, at start, whatever fell due while the server was down.
type scheduler struct {
	db    *store.DB
	clock Clock
	log   *slog.Logger
	kick  chan struct{} // capacity 1: wakes the loop
	quit  chan struct{}
	done  chan struct{}
}

func newScheduler(db *store.DB, c Clock, log *slog.Logger) *scheduler {
	s := &scheduler{db: db, clock: c, log: log,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

// wake makes the loop re-read the next due time; it never blocks.
func (s *scheduler) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *scheduler) stop() {
	if s == nil {
		return
	}
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

func (s *scheduler) loop() {
	defer close(s.done)
	for {
		now := s.clock.Now()
		ts, ok := s.db.NextDue()
		var stopTimer func() bool
		if ok {
			d := time.Unix(ts, 0).Sub(now)
			if d <= 0 {
				if n, err := s.db.PublishDue(now.Unix()); err != nil {
					s.log.Error("httpbridge: publishing due events", "err", err)
					// Retry after a pause rather than spin on a failing store.
					stopTimer = s.clock.At(now.Add(time.Second), s.wake)
				} else if n == 0 {
					// NextDue and PublishDue disagree (cannot happen with a sound store):
					// look again in a second rather than spin.
					stopTimer = s.clock.At(now.Add(time.Second), s.wake)
				} else {
					s.log.Debug("httpbridge: published due events", "n", n)
					continue
				}
			} else {
				stopTimer = s.clock.At(now.Add(min(d, maxWait)), s.wake)
			}
		}
		select {
		case <-s.kick:
		case <-s.quit:
			if stopTimer != nil {
				stopTimer()
			}
			return
		}
		if stopTimer != nil {
			stopTimer()
		}
	}
}
