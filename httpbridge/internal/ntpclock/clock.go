package ntpclock

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/ntp"
)

// Options configure New. The zero value is a local clock with no queries.
type Options struct {
	Servers  []string      // NTP servers ("host" or "host:port"); empty = local clock only, no queries
	Interval time.Duration // re-query period; 0 = 1 hour
	Timeout  time.Duration // per query; 0 = 2 s
	Logger   *slog.Logger  // nil = slog.Default()
}

// Clock is a wall clock: local time plus the last offset measured by NTP. Its methods are
// safe for concurrent use.
type Clock struct {
	offset atomic.Int64 // nanoseconds
	opts   Options
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	warned bool // only the query goroutine touches it
}

// New starts the clock. It never blocks on the network: the first query runs in the
// background, and until a server answers Now is the local clock.
func New(opts Options) *Clock {
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	c := &Clock{opts: opts, log: opts.Logger, stop: make(chan struct{}), done: make(chan struct{})}
	if c.log == nil {
		c.log = slog.Default()
	}
	if len(opts.Servers) == 0 {
		close(c.done)
		return c
	}
	go c.loop()
	return c
}

// Now is local time plus the last measured offset.
func (c *Clock) Now() time.Time { return time.Now().Add(c.Offset()) }

// Offset is the last measured offset of the local clock (true time - local time); 0 until a
// server answered. It is kept when later queries fail.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Close stops the background queries and waits for a running one to end (at most Timeout
// per server).
func (c *Clock) Close() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}

func (c *Clock) loop() {
	defer close(c.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.query()
		t.Reset(c.opts.Interval)
	}
}

// query asks the servers in order and keeps the first valid answer. A failure of all of them
// is logged once (this is the normal state of a machine without internet); the clock then
// stays on its last offset.
func (c *Clock) query() {
	var lastErr error
	for _, s := range c.opts.Servers {
		select {
		case <-c.stop:
			return
		default:
		}
		r, err := ntp.QueryWithOptions(s, ntp.QueryOptions{Timeout: c.opts.Timeout})
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			lastErr = err
			continue
		}
		c.offset.Store(int64(r.ClockOffset))
		if c.warned {
			c.log.Info("ntpclock: NTP server answered", "server", s, "offset", r.ClockOffset)
			c.warned = false
		}
		return
	}
	if !c.warned {
		c.warned = true
		c.log.Warn("ntpclock: no NTP server answered; using the local clock", "servers", c.opts.Servers, "error", lastErr, "offset", c.Offset())
	}
}
