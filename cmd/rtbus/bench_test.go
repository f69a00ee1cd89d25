package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

// TestBenchWatchdog: the stage watchdog, which replaces a deadline per call, ends a stage
// whose worker stalls (within twice the call timeout) and leaves alone workers that progress
// or are done.
func TestBenchWatchdog(t *testing.T) {
	b := &bench{c: &cli{timeout: 200 * time.Millisecond}, watched: make([]counter, 3)}
	for i := range b.watched {
		b.watched[i].active.Store(true)
	}
	b.watched[1].done.Store(true) // finished: not stuck
	ctx, stall := context.WithCancelCause(context.Background())
	defer stall(nil)
	quit := make(chan struct{})
	defer close(quit)
	go func() { // worker 0 progresses; worker 2 stalls
		for {
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
				b.watched[0].n.Add(1)
			}
		}
	}()
	start := time.Now()
	stop := b.watch(stall)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled worker was not detected")
	}
	err := context.Cause(ctx)
	if !errors.Is(err, bus.ErrTimeout) || err.Error() != "worker 2: no reply for 200ms: "+bus.ErrTimeout.Error() {
		t.Fatalf("cause %v, want worker 2 timed out", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("stall reported after %v, before the timeout", d)
	}
}
