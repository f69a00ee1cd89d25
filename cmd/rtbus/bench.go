package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
)

// benchStages are the stages of the BUS/RT reference benchmark (WIRE.md §10), in its order.
var benchStages = []string{
	"rpc.call", "rpc.call+handle", "rpc.call0",
	"send+recv.qos.no", "send+recv.qos.processed", "send.qos.no", "send.qos.processed",
}

// window bounds the QoS 0 frames a sender has ahead of its receiver: QoS 0 has no flow
// control, and a receiver a whole queue behind would be dropped as a slow receiver.
const window = 4096

type bench struct {
	c        *cli
	workers  int
	payload  []byte
	done     atomic.Int64 // iterations finished in the running stage, for the progress line
	conns    []interface{ Close() error }
	connsMu  sync.Mutex
	missing  string    // a name no client has
	prefix   string    // of the running stage's client names
	progress bool      // stderr is a terminal
	watched  []counter // the running stage's, one per worker, for the watchdog
}

func (c *cli) benchmark(ctx context.Context, args []string) error {
	fs := subFlags("benchmark", c)
	workers := fs.Int("w", 8, "workers, each with its own connections")
	size := fs.Int("payload-size", 100, "payload size, bytes")
	// A default run ends in seconds; the reference benchmark's figures are for -i 1000000.
	iters := fs.Int("i", 100_000, "iterations per stage, shared by the workers (the reference benchmark: 1000000)")
	only := fs.String("s", "", "comma-separated stages to run (default: all)")
	if err := parseSub(fs, args); err != nil {
		return err
	}
	if *workers < 1 || *size < 0 || *iters < *workers {
		return usageError{"benchmark: want -w >= 1, -payload-size >= 0 and -i >= -w"}
	}
	stages := benchStages
	if *only != "" {
		stages = strings.Split(*only, ",")
		for _, s := range stages {
			found := false
			for _, k := range benchStages {
				found = found || k == s
			}
			if !found {
				return usageError{fmt.Sprintf("benchmark: unknown stage %q (stages: %s)", s, strings.Join(benchStages, ", "))}
			}
		}
	}
	b := &bench{c: c, workers: *workers, payload: bytes.Repeat([]byte{0x5a}, *size), missing: c.name + ".nobody"}
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 && c.stderr == os.Stderr {
		b.progress = true
	}
	fmt.Fprintf(c.stdout, "workers: %d, payload: %d bytes, iterations: %d, broker: %s\n", *workers, *size, *iters, c.addr)
	fmt.Fprintf(c.stdout, "%-24s %12s %10s\n", "stage", "iters/s", "time")
	for n, s := range stages {
		b.prefix = fmt.Sprintf("%s.%d", c.name, n) // fresh names: the last stage's may still be leaving
		d, err := b.run(ctx, s, *iters)
		if err != nil {
			return fmt.Errorf("benchmark %s: %w", s, err)
		}
		fmt.Fprintf(c.stdout, "%-24s %12s %9.3fs\n", s, thousands(int64(float64(*iters)/d.Seconds())), d.Seconds())
	}
	return nil
}

// run sets a stage up (connections first), then times iters iterations shared by the
// workers.
func (b *bench) run(ctx context.Context, stage string, iters int) (time.Duration, error) {
	defer b.closeAll()
	ctx, stall := context.WithCancelCause(ctx)
	defer stall(nil)
	b.watched = make([]counter, b.workers)
	runs := make([]func(n int) error, b.workers)
	for i := range runs {
		var err error
		if runs[i], err = b.worker(ctx, stage, i); err != nil {
			return 0, err
		}
	}
	b.done.Store(0)
	stop := b.showProgress(stage, iters)
	defer stop()
	start := time.Now()
	stopWatch := b.watch(stall)
	defer stopWatch()
	errs := make(chan error, b.workers)
	for i, run := range runs {
		n := iters / b.workers
		if i < iters%b.workers {
			n++
		}
		go func() { errs <- run(n) }()
	}
	var first error
	for range runs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(start), first
}

// watch ends the stage with an error once the calls of some worker make no progress for the
// call timeout (-t), and so within twice that: between the ticks of the watchdog, a worker
// that is neither done nor has finished a call meanwhile is stuck. Workers of stages that
// have no counter of their own (their sends have ack timeouts) always look done.
func (b *bench) watch(stall context.CancelCauseFunc) func() {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(b.c.timeout)
		defer t.Stop()
		last := make([]int64, len(b.watched))
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			for i := range b.watched {
				w := &b.watched[i]
				n := w.n.Load()
				if n == last[i] && w.active.Load() && !w.done.Load() {
					stall(fmt.Errorf("worker %d: no reply for %v: %w", i, b.c.timeout, bus.ErrTimeout))
					return
				}
				last[i] = n
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// counter is a worker's progress for the watchdog, on a cache line of its own so that
// workers counting do not contend.
type counter struct {
	n      atomic.Int64
	active atomic.Bool // the worker's calls are watched
	done   atomic.Bool
	_      [48]byte
}

func (b *bench) showProgress(stage string, iters int) func() {
	if !b.progress {
		fmt.Fprintf(b.c.stderr, "benchmark: %s...\n", stage)
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			fmt.Fprintf(b.c.stderr, "\r%-26s %3d%%", stage, b.done.Load()*100/int64(iters))
			select {
			case <-quit:
				fmt.Fprintf(b.c.stderr, "\r%-31s\r", "")
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

func (b *bench) conn(ctx context.Context, name string) (bus.Conn, error) {
	conn, err := b.c.dial(ctx, name)
	if err != nil {
		return nil, err
	}
	b.track(conn)
	return conn, nil
}

func (b *bench) track(c interface{ Close() error }) {
	b.connsMu.Lock()
	b.conns = append(b.conns, c)
	b.connsMu.Unlock()
}

func (b *bench) closeAll() {
	b.connsMu.Lock()
	defer b.connsMu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

// count reports progress every 64 iterations, not to make the counter the bottleneck.
func (b *bench) count(i int) {
	if i&63 == 63 {
		b.done.Add(64)
	}
}

// worker connects worker i of stage and returns its loop.
func (b *bench) worker(ctx context.Context, stage string, i int) (func(n int) error, error) {
	name := fmt.Sprintf("%s.w%d", b.prefix, i)
	conn, err := b.conn(ctx, name)
	if err != nil {
		return nil, err
	}
	switch stage {
	case "rpc.call", "rpc.call+handle":
		// As in the reference benchmark, rpc.call+handle has each worker call itself: its
		// own RPC client handles the call and receives the reply.
		target := bus.BrokerName
		r := rpc.New(conn, rpc.Options{})
		b.track(r)
		if stage == "rpc.call+handle" {
			target = name
			r.Handle("benchmark.test", func(_ context.Context, r rpc.Request) ([]byte, error) { return r.Params, nil })
		}
		// A deadline per call would cost a timer and an allocation per call, a good part of
		// what is measured: the stage's watchdog ends calls that stall instead.
		progress := &b.watched[i]
		progress.active.Store(true)
		return func(n int) error {
			defer progress.done.Store(true)
			for i := range n {
				res, err := r.Call(ctx, target, "benchmark.test", b.payload)
				if err != nil {
					if cause := context.Cause(ctx); cause != nil {
						return cause
					}
					return err
				}
				progress.n.Add(1)
				if len(res) != len(b.payload) {
					return fmt.Errorf("%s echoed %d bytes, sent %d", target, len(res), len(b.payload))
				}
				b.count(i)
			}
			return nil
		}, nil
	case "rpc.call0":
		r := rpc.New(conn, rpc.Options{})
		b.track(r)
		return func(n int) error {
			for i := range n {
				if err := r.Call0(b.missing, "benchmark.test", b.payload); err != nil && !errors.Is(err, bus.ErrNotRegistered) {
					return err
				}
				b.count(i)
			}
			return nil
		}, nil
	case "send.qos.no", "send.qos.processed":
		qos := bus.QoSNo
		if stage == "send.qos.processed" {
			qos = bus.QoSProcessed
		}
		return func(n int) error {
			for i := range n {
				if err := conn.Send(qos, b.missing, b.payload); err != nil && !errors.Is(err, bus.ErrNotRegistered) {
					return err
				}
				b.count(i)
			}
			// An acknowledged frame is acked after everything sent before it was routed.
			if err := conn.Send(bus.QoSProcessed, b.missing, nil); !errors.Is(err, bus.ErrNotRegistered) {
				return fmt.Errorf("final ack: %v", err)
			}
			return nil
		}, nil
	case "send+recv.qos.no", "send+recv.qos.processed":
		qos := bus.QoSNo
		if stage == "send+recv.qos.processed" {
			qos = bus.QoSProcessed
		}
		// As in the reference benchmark, each worker sends to itself and reads what it sent.
		rname, rc := name, conn
		progress := &b.watched[i] // the receiver's: a deadline per frame would cost too much
		progress.active.Store(true)
		return func(n int) error {
			var got atomic.Int64
			recvErr := make(chan error, 1)
			go func() {
				defer progress.done.Store(true)
				for got.Load() < int64(n) {
					f, err := rc.Recv(ctx)
					if err != nil {
						if cause := context.Cause(ctx); cause != nil {
							err = cause
						}
						recvErr <- err
						return
					}
					progress.n.Add(1)
					if f.Kind == bus.KindMessage {
						b.count(int(got.Add(1)) - 1)
					}
					f.Release() // read: the client may reuse its receive buffer
				}
				recvErr <- nil
			}()
			for i := range n {
				for int64(i)-got.Load() > window {
					select {
					case err := <-recvErr: // the receiver gave up: so does the sender
						return err
					case <-ctx.Done():
						return context.Cause(ctx)
					default:
					}
					time.Sleep(20 * time.Microsecond)
				}
				if err := conn.Send(qos, rname, b.payload); err != nil {
					return err
				}
			}
			return <-recvErr
		}, nil
	}
	return nil, fmt.Errorf("unknown stage %q", stage)
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
