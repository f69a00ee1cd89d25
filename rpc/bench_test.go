package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
)

// Benchmarks of calls over a UNIX socket (as `rtbus benchmark` measures them) and in-process,
// with 1 and 8 workers, each worker on its own connection, 100-byte params echoed back.
//   rpc.call:        workers call .broker's benchmark.test
//   rpc.call+handle: each worker calls itself (its own client handles the call), as in the
//                    reference benchmark

func BenchmarkCall(b *testing.B) {
	for _, where := range []string{"unix", "inprocess"} {
		for _, stage := range []string{"call", "call+handle"} {
			for _, workers := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/%s/workers=%d", where, stage, workers), func(b *testing.B) {
					e := inProcess(b)
					if where == "unix" {
						e = overSocket(b)
					}
					benchCalls(b, e, stage == "call+handle", workers)
				})
			}
		}
	}
}

func benchCalls(b *testing.B, e *env, handle bool, workers int) {
	s, err := rpc.ServeBroker(e.b)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := bytes.Repeat([]byte{0x5a}, 100)
	callers := make([]*rpc.Client, workers)
	targets := make([]string, workers)
	for i := range callers {
		callers[i] = e.rpc(b, fmt.Sprintf("w%d", i))
		targets[i] = bus.BrokerName
		if handle {
			targets[i] = callers[i].Name()
			callers[i].Handle("benchmark.test", func(_ context.Context, r rpc.Request) ([]byte, error) { return r.Params, nil })
		}
	}
	ctx := context.Background()
	for i := range callers { // warm up every connection
		if _, err := callers[i].Call(ctx, targets[i], "benchmark.test", payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range callers {
		n := b.N / workers
		if i < b.N%workers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if _, err := callers[i].Call(ctx, targets[i], "benchmark.test", payload); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkCall0Missing: call0 to a name nobody has over a UNIX socket, one caller (BUS/RT's
// rpc.call0 stage is this, with 8).
func BenchmarkCall0Missing(b *testing.B) {
	e := overSocket(b)
	c := e.rpc(b, "caller")
	payload := bytes.Repeat([]byte{0x5a}, 100)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Call0("nobody", "benchmark.test", payload); !errors.Is(err, bus.ErrNotRegistered) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
