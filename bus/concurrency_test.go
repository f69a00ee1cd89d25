package bus_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

// TestOrderPerSender: frames from one sender to one receiver keep their order (WIRE.md §7),
// with several senders running at once and every kind of frame mixed.
func TestOrderPerSender(t *testing.T) {
	const senders, n = 6, 1000
	b := newBroker(t)
	rx := mustRegister(t, b, "rx", bus.WithClientQueue(senders*n+1))
	if err := rx.Subscribe(bus.QoSProcessed, "seq/#"); err != nil {
		t.Fatal(err)
	}
	txs := make([]*bus.Client, senders)
	for s := range senders {
		name := fmt.Sprintf("tx.%d", s)
		if s%2 == 1 {
			name = fmt.Sprintf("tx.%d%%%%sec", s-1) // secondaries send too
		}
		txs[s] = mustRegister(t, b, name)
	}
	var start, wg sync.WaitGroup
	start.Add(1)
	for s, tx := range txs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			for i := range n {
				p := seqPayload(s, i)
				var err error
				switch (i + s) % 4 {
				case 0:
					err = tx.Send(bus.QoSNo, "rx", p)
				case 1:
					err = tx.Publish(bus.QoSRealtime, fmt.Sprintf("seq/%d", s), p)
				case 2:
					err = tx.Broadcast(bus.QoSProcessed, "rx", p)
				default:
					err = tx.PublishFor(bus.QoSRealtimeProcessed, "seq/x", "rx", p)
				}
				if err != nil {
					t.Errorf("sender %d frame %d: %v", s, i, err)
					return
				}
			}
		}()
	}
	// Read concurrently with the senders.
	next := make([]int, senders)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range senders * n {
			ctx, cancel := recvCtx(t)
			f, err := rx.Recv(ctx)
			cancel()
			if err != nil {
				t.Errorf("Recv: %v", err)
				return
			}
			if len(f.Payload) != 8 {
				t.Errorf("unexpected frame %s", fmtFrame(f))
				return
			}
			s, seq := parseSeq(t, f.Payload)
			if f.Sender != txs[s].Name() {
				t.Errorf("frame of sender %d from %q", s, f.Sender)
			}
			if seq != next[s] {
				t.Errorf("sender %d: sequence %d after %d", s, seq, next[s]-1)
				return
			}
			next[s]++
		}
	}()
	start.Done()
	wg.Wait()
	<-done
	if t.Failed() {
		return
	}
	expectNothing(t, rx, rx)
}

// TestOrderToManyReceivers: one sender's publications reach several receivers in the same
// order at each.
func TestOrderToManyReceivers(t *testing.T) {
	const receivers, n = 5, 2000
	b := newBroker(t)
	tx := mustRegister(t, b, "tx")
	var wg sync.WaitGroup
	for r := range receivers {
		rx := mustRegister(t, b, fmt.Sprintf("rx.%d", r), bus.WithBlockingSenders(waitLimit), bus.WithClientQueue(16))
		if err := rx.Subscribe(bus.QoSProcessed, "o/+"); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				ctx, cancel := recvCtx(t)
				f, err := rx.Recv(ctx)
				cancel()
				if err != nil {
					t.Errorf("%s: Recv: %v", rx.Name(), err)
					return
				}
				if _, seq := parseSeq(t, f.Payload); seq != i {
					t.Errorf("%s: frame %d has sequence %d", rx.Name(), i, seq)
					return
				}
			}
		}()
	}
	for i := range n {
		if err := tx.Publish(bus.QoSNo, "o/x", seqPayload(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// TestConcurrentChurn runs registrations, unregistrations, subscriptions, exclusions,
// publications, broadcasts, one-to-one messages and forced disconnects at once. Run with
// -race; it checks that nothing panics, deadlocks or races, that every client stops with a
// close reason, and that the broker's bookkeeping is consistent afterwards.
func TestConcurrentChurn(t *testing.T) {
	b := newBroker(t, bus.WithQueueSize(64))
	const nWorkers, rounds = 8, 200
	var workers, helpers, readers sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A monitor reads announcements the whole time.
	mon := mustRegister(t, b, "monitor", bus.WithClientQueue(1<<20))
	if err := mon.Subscribe(bus.QoSNo, bus.TopicInfo, "#"); err != nil {
		t.Fatal(err)
	}
	helpers.Add(1)
	go func() {
		defer helpers.Done()
		for range mon.Frames() {
		}
	}()
	// A disconnector drops random names.
	helpers.Add(1)
	go func() {
		defer helpers.Done()
		for i := 0; ctx.Err() == nil; i++ {
			b.ForceDisconnect(fmt.Sprintf("w%d.c%d", i%nWorkers, i%5))
			b.Clients()
			b.Stats()
			runtime.Gosched()
		}
	}()

	for w := range nWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []*bus.Client
			for r := range rounds {
				name := fmt.Sprintf("w%d.c%d", w, r%5)
				if rng.IntN(3) == 0 {
					name += fmt.Sprintf("%%%%s%d", r%2) // a secondary, if its primary is there
				}
				c, err := b.RegisterClient(name)
				if err != nil {
					if !errors.Is(err, bus.ErrBusy) && !errors.Is(err, bus.ErrNotRegistered) {
						t.Errorf("RegisterClient(%q): %v", name, err)
					}
				} else {
					mine = append(mine, c)
					readers.Add(1)
					go func() {
						defer readers.Done()
						for range c.Frames() {
						}
						if err := c.Err(); !errors.Is(err, bus.ErrClosed) {
							t.Errorf("%s stopped with %v", c.Name(), err)
						}
					}()
				}
				for _, c := range mine {
					target := fmt.Sprintf("w%d.c%d", rng.IntN(nWorkers), rng.IntN(5))
					topic := fmt.Sprintf("t/%d/%d", rng.IntN(3), rng.IntN(3))
					q := bus.QoS(rng.IntN(4))
					switch rng.IntN(9) {
					case 0:
						c.Subscribe(q, topic, "t/+/1", "t/#")
					case 1:
						c.Unsubscribe(q, topic, "t/#")
					case 2:
						c.Exclude(q, topic)
					case 3:
						c.Unexclude(q, topic)
					case 4:
						c.Publish(q, topic, []byte("p"))
					case 5:
						c.PublishFor(q, topic, target, []byte("pf"))
					case 6:
						c.Broadcast(q, fmt.Sprintf("w%d.*", rng.IntN(nWorkers)), []byte("b"))
					case 7:
						c.Send(q, target, []byte("s"))
					case 8:
						c.Info()
					}
				}
				if len(mine) > 0 && rng.IntN(4) == 0 {
					i := rng.IntN(len(mine))
					mine[i].Close()
					mine = append(mine[:i], mine[i+1:]...)
				}
			}
			for _, c := range mine {
				c.Close()
			}
		}()
	}
	waitGroup(t, "workers", &workers)
	cancel()
	b.Close()
	waitGroup(t, "monitor and disconnector", &helpers)
	waitGroup(t, "readers", &readers)

	// Everything is gone: every name is free.
	for w := range nWorkers {
		for r := range 5 {
			if err := b.ForceDisconnect(fmt.Sprintf("w%d.c%d", w, r)); !errors.Is(err, bus.ErrNotRegistered) {
				t.Errorf("w%d.c%d still registered: %v", w, r, err)
			}
		}
	}
}

// waitGroup waits for wg, failing the test instead of hanging if it never finishes.
func waitGroup(t *testing.T, what string, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(6 * waitLimit):
		t.Fatalf("%s still running after %v: deadlock?", what, 6*waitLimit)
	}
}

// TestNoGoroutines: the broker runs no goroutines of its own (Broker doc), and nothing the
// tests start outlives the clients and the broker: after they close, the number of goroutines
// returns to where it was.
func TestNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	b := bus.New(bus.WithLogger(quietLogger()))
	var cs []*bus.Client
	for i := range 50 {
		c, err := b.RegisterClient(fmt.Sprintf("g.%d", i), bus.WithClientQueue(4), bus.WithBlockingSenders(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		c.Subscribe(bus.QoSProcessed, "x/#")
		cs = append(cs, c)
	}
	tx := mustRegister(t, b, "tx")
	for range 3 { // fills the queues: blocking senders time out
		tx.Publish(bus.QoSProcessed, "x/1", nil)
		tx.Broadcast(bus.QoSProcessed, "g.*", nil)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("%d goroutines with a broker and 51 idle clients, %d before", n, base)
	}

	// Readers, waiting senders and cancelled receives, all ended by closing.
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range c.Frames() {
			}
		}()
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			c.Recv(ctx)
		}()
	}
	slow := mustRegister(t, b, "slow", bus.WithClientQueue(1), bus.WithBlockingSenders(time.Hour))
	slow.Unsubscribe(bus.QoSProcessed, bus.TopicWarn)
	tx.Send(bus.QoSProcessed, "slow", nil)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tx.Send(bus.QoSProcessed, "slow", nil) // waits until slow goes
	}()
	for i, c := range cs {
		if i%2 == 0 {
			c.Close()
		}
	}
	b.Close()
	waitGroup(t, "readers and senders", &wg)
	eventually(t, fmt.Sprintf("goroutines back to %d", base), func() bool {
		return runtime.NumGoroutine() <= base
	})
}
