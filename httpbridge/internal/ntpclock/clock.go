package ntpclock

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/beevik/ntp"
)

// Options configure New. The zero value is a local clock with no queries.
type Options struct {
	Servers  []string      // NTP servers ("host" or "host:port"); empty = local clock only, no queries
	Interval time.Duration // re-query period; 0 = 1 hour
	Retry    time.Duration // re-query period while no server answers; 0 = 5 minutes (at most Interval)
	Timeout  time.Duration // per query; 0 = 2 s
	Logger   *slog.Logger  // nil = slog.Default()
}

// Clock is a wall clock: local time plus the last offset measured by NTP. Its methods are
// safe for concurrent use.
type Clock struct {
	offset atomic.Int64 // nanoseconds
	opts   Options
	log    *slog.Logger
	ctx    context.Context // ends at Close: aborts a name lookup in progress
	stop   context.CancelFunc
	done   chan struct{}
	warned bool // only the query goroutine touches it
	synced bool // a server has answered once; only the query goroutine touches it
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
	if opts.Retry <= 0 {
		opts.Retry = 5 * time.Minute
	}
	opts.Retry = min(opts.Retry, opts.Interval)
	c := &Clock{opts: opts, log: opts.Logger, done: make(chan struct{})}
	c.ctx, c.stop = context.WithCancel(context.Background())
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

// Close stops the background queries and waits for a running one to end (at most Timeout:
// a name lookup in progress is aborted at once, a wait for an answer ends at its deadline).
func (c *Clock) Close() {
	c.stop()
	<-c.done
}

func (c *Clock) loop() {
	defer close(c.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.query() {
			t.Reset(c.opts.Interval)
		} else {
			t.Reset(c.opts.Retry)
		}
	}
}

// query asks the servers in order and keeps the first valid answer. A failure of all of them
// is logged once (this is the normal state of a machine without internet); the clock then
// stays on its last offset.
func (c *Clock) query() (answered bool) {
	var lastErr error
	for _, s := range c.opts.Servers {
		if c.ctx.Err() != nil {
			return false
		}
		r, err := c.query1(s)
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			lastErr = err
			continue
		}
		c.offset.Store(int64(r.ClockOffset))
		switch {
		case !c.synced || c.warned:
			c.log.Info("ntpclock: NTP server answered; the clock follows it", "server", s, "offset", r.ClockOffset)
		default:
			c.log.Debug("ntpclock: NTP server answered", "server", s, "offset", r.ClockOffset)
		}
		c.synced, c.warned = true, false
		return true
	}
	if !c.warned {
		c.warned = true
		c.log.Warn("ntpclock: no NTP server answered; using the local clock", "servers", c.opts.Servers, "error", lastErr, "offset", c.Offset(), "retry", c.opts.Retry)
	}
	return false
}

// query1 asks one server. The name lookup and the exchange share the timeout: without one on
// the lookup, a machine with no network could wait on its resolver far longer.
func (c *Clock) query1(server string) (*ntp.Response, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
	defer cancel()
	return ntp.QueryWithOptions(server, ntp.QueryOptions{
		Timeout: c.opts.Timeout,
		Dialer: func(local, remote string) (net.Conn, error) {
			var d net.Dialer
			if local != "" {
				d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(local)}
			}
			return d.DialContext(ctx, "udp", remote)
		},
	})
}
