package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/rtbus/rtbus/bus"
)

// TestRecvBatch: a batch holds what is queued, in order, bounded by max, and the frames left
// over come next.
func TestRecvBatch(t *testing.T) {
	b := newBroker(t)
	tx := mustRegister(t, b, "tx")
	rx := mustRegister(t, b, "rx")
	for i := range 10 {
		if err := tx.Send(bus.QoSProcessed, "rx", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := recvCtx(t)
	defer cancel()
	got, err := rx.RecvBatch(ctx, nil, 4)
	if err != nil || len(got) != 4 {
		t.Fatalf("first batch: %d frames, %v; want 4", len(got), err)
	}
	got, err = rx.RecvBatch(ctx, got, 0)
	if err != nil || len(got) != 10 {
		t.Fatalf("second batch: %d frames in all, %v; want 10", len(got), err)
	}
	for i, f := range got {
		if string(f.Payload) != fmt.Sprint(i) {
			t.Fatalf("frame %d has payload %q", i, f.Payload)
		}
	}
	if n := rx.Info().Queue; n != 0 {
		t.Fatalf("queue length %d after reading everything", n)
	}
	// Nothing queued: it waits, and the context ends the wait.
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if _, err := rx.RecvBatch(short, nil, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("empty queue, cancelled context: %v", err)
	}
}

// TestRecvBatchAfterStop: Broker.Close keeps queued frames readable in batches, a dropping
// stop does not.
func TestRecvBatchAfterStop(t *testing.T) {
	b := newBroker(t)
	tx := mustRegister(t, b, "tx")
	keep := mustRegister(t, b, "keep")
	drop := mustRegister(t, b, "drop")
	for range 3 {
		tx.Send(bus.QoSNo, "keep", []byte("k"))
		tx.Send(bus.QoSNo, "drop", []byte("d"))
	}
	ctx, cancel := recvCtx(t)
	defer cancel()
	if err := b.ForceDisconnect("drop"); err != nil {
		t.Fatal(err)
	}
	if got, err := drop.RecvBatch(ctx, nil, 0); len(got) != 0 || !errors.Is(err, bus.ErrDisconnected) {
		t.Fatalf("dropped client: %d frames, %v", len(got), err)
	}
	b.Close()
	got, err := keep.RecvBatch(ctx, nil, 0)
	// The three messages and the shutdown warning.
	if err != nil || len(got) != 4 || got[3].Topic != bus.TopicWarn {
		t.Fatalf("after Close: %d frames, %v", len(got), err)
	}
	if _, err := keep.RecvBatch(ctx, nil, 0); !errors.Is(err, bus.ErrBrokerClosed) {
		t.Fatalf("then: %v, want ErrBrokerClosed", err)
	}
}

// TestRecvBatchConcurrentSenders: under -race, batches from several senders lose nothing and
// keep each sender's order.
func TestRecvBatchConcurrentSenders(t *testing.T) {
	b := newBroker(t)
	rx := mustRegister(t, b, "rx", bus.WithBlockingSenders(waitLimit))
	const senders, each = 4, 2000
	var wg sync.WaitGroup
	for s := range senders {
		tx := mustRegister(t, b, fmt.Sprintf("tx.%d", s))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := tx.Send(bus.QoSProcessed, "rx", []byte(fmt.Sprint(i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	ctx, cancel := recvCtx(t)
	defer cancel()
	next := map[string]int{}
	var batch []bus.Frame
	for n := 0; n < senders*each; {
		var err error
		batch, err = rx.RecvBatch(ctx, batch[:0], 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range batch {
			if want := fmt.Sprint(next[f.Sender]); string(f.Payload) != want {
				t.Fatalf("from %s: got %s, want %s", f.Sender, f.Payload, want)
			}
			next[f.Sender]++
		}
		n += len(batch)
	}
	wg.Wait()
}
