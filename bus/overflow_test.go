package bus_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

// TestOverflowDisconnectsSlowReceiver: a receiver whose queue is full when a frame is routed to
// it is disconnected; the sender is not, and receivers that keep up get every frame (WIRE.md §7).
func TestOverflowDisconnectsSlowReceiver(t *testing.T) {
	kinds := []struct {
		name string
		send func(tx *bus.Client, i int) error
	}{
		{"send", func(tx *bus.Client, i int) error { return tx.Send(bus.QoSProcessed, "slow", seqPayload(0, i)) }},
		{"publish", func(tx *bus.Client, i int) error { return tx.Publish(bus.QoSProcessed, "data", seqPayload(0, i)) }},
		{"publish-for", func(tx *bus.Client, i int) error {
			return tx.PublishFor(bus.QoSProcessed, "data", "slow", seqPayload(0, i))
		}},
		{"broadcast", func(tx *bus.Client, i int) error { return tx.Broadcast(bus.QoSProcessed, "*", seqPayload(0, i)) }},
	}
	const limit, n = 4, 50
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			b := newBroker(t)
			slow := mustRegister(t, b, "slow", bus.WithClientQueue(limit))
			fast := mustRegister(t, b, "fast") // default queue: room for all n frames
			tx := mustRegister(t, b, "tx")
			for _, c := range []*bus.Client{slow, fast} {
				if err := c.Subscribe(bus.QoSProcessed, "data"); err != nil {
					t.Fatal(err)
				}
			}
			// fast also reads concurrently, as a live client would.
			var fastGot []bus.Frame
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f := range fast.Frames() {
					if f.Kind == bus.KindPublish && f.Topic == bus.TopicWarn {
						continue
					}
					fastGot = append(fastGot, f)
				}
			}()
			for i := range n {
				err := k.send(tx, i)
				switch {
				case k.name == "send" && i == limit:
					wantErr(t, fmt.Sprintf("frame %d to the full queue", i), err, bus.ErrNotDelivered)
				case k.name == "send" && i > limit:
					wantErr(t, fmt.Sprintf("frame %d to the dropped receiver", i), err, bus.ErrNotRegistered)
				default:
					wantErr(t, fmt.Sprintf("frame %d", i), err, nil)
				}
			}
			if err := recvEnd(t, slow); !errors.Is(err, bus.ErrQueueOverflow) || !errors.Is(err, bus.ErrClosed) {
				t.Fatalf("slow receiver: %v, want ErrQueueOverflow", err)
			}
			if err := slow.Err(); !errors.Is(err, bus.ErrQueueOverflow) {
				t.Fatalf("slow.Err() = %v", err)
			}
			if err := tx.Err(); err != nil {
				t.Fatalf("the sender was stopped: %v", err)
			}
			if err := tx.Send(bus.QoSProcessed, "fast", []byte("still here")); err != nil {
				t.Fatalf("the sender cannot send any more: %v", err)
			}
			// The slow receiver is gone from the tables: its name is free.
			if _, err := b.RegisterClient("slow"); err != nil {
				t.Fatalf("re-register the dropped receiver: %v", err)
			}
			b.Close()
			wg.Wait()
			if k.name == "send" || k.name == "publish-for" {
				// Those frames were for slow alone: fast got only "still here".
				if len(fastGot) != 1 || string(fastGot[0].Payload) != "still here" {
					t.Fatalf("fast receiver got %v", fmtFrames(fastGot))
				}
				return
			}
			// The message "still here" is last.
			if len(fastGot) != n+1 {
				t.Fatalf("fast receiver got %d frames, want %d", len(fastGot), n+1)
			}
			for i, f := range fastGot[:n] {
				if s, seq := parseSeq(t, f.Payload); s != 0 || seq != i {
					t.Fatalf("fast receiver frame %d has sequence %d", i, seq)
				}
			}
		})
	}
}

// TestOverflowOfSecondary: a slow secondary is dropped alone; its primary stays.
func TestOverflowOfSecondary(t *testing.T) {
	b := newBroker(t)
	p := mustRegister(t, b, "p")
	s := mustRegister(t, b, "p%%s", bus.WithClientQueue(1))
	tx := mustRegister(t, b, "tx")
	tx.Send(bus.QoSProcessed, "p%%s", nil)
	if err := tx.Send(bus.QoSProcessed, "p%%s", nil); !errors.Is(err, bus.ErrNotDelivered) {
		t.Fatalf("Send to the full secondary: %v", err)
	}
	if err := recvEnd(t, s); !errors.Is(err, bus.ErrQueueOverflow) {
		t.Fatalf("secondary: %v", err)
	}
	if p.Err() != nil {
		t.Fatalf("primary stopped: %v", p.Err())
	}
}

// TestBrokerQueueSize: WithQueueSize sets every client's default bound; WithClientQueue
// overrides it; values below 1 are ignored.
func TestBrokerQueueSize(t *testing.T) {
	b := newBroker(t, bus.WithQueueSize(3), bus.WithQueueSize(0), bus.WithQueueSize(-1))
	tx := mustRegister(t, b, "tx")
	mustRegister(t, b, "small")
	mustRegister(t, b, "big", bus.WithClientQueue(5), bus.WithClientQueue(0))
	fill := func(target string) int {
		for i := 0; ; i++ {
			if err := tx.Send(bus.QoSProcessed, target, nil); err != nil {
				if !errors.Is(err, bus.ErrNotDelivered) {
					t.Fatalf("Send to %s: %v", target, err)
				}
				return i
			}
			if i > 100 {
				t.Fatalf("%s never filled", target)
			}
		}
	}
	if n := fill("small"); n != 3 {
		t.Errorf("broker default queue held %d frames, want 3", n)
	}
	if n := fill("big"); n != 5 {
		t.Errorf("client queue held %d frames, want 5", n)
	}
}

// TestBlockingSenderTimesOut: with WithBlockingSenders a sender finding the queue full waits,
// then gets ErrNotDelivered; the receiver is not disconnected and loses nothing queued.
func TestBlockingSenderTimesOut(t *testing.T) {
	b := newBroker(t)
	rx := mustRegister(t, b, "rx", bus.WithClientQueue(2), bus.WithBlockingSenders(20*time.Millisecond))
	tx := mustRegister(t, b, "tx")
	if err := rx.Subscribe(bus.QoSProcessed, "t"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := tx.Send(bus.QoSProcessed, "rx", seqPayload(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range allQoS {
		want := error(nil)
		if q.NeedsAck() {
			want = bus.ErrNotDelivered
		}
		wantErr(t, "Send "+qosName(q)+" to the full blocking queue", tx.Send(q, "rx", []byte("lost")), want)
		// Publish and broadcast skip the full receiver silently.
		wantErr(t, "Publish "+qosName(q), tx.Publish(q, "t", []byte("lost")), nil)
		wantErr(t, "Broadcast "+qosName(q), tx.Broadcast(q, "rx", []byte("lost")), nil)
	}
	if err := rx.Err(); err != nil {
		t.Fatalf("the blocking receiver was disconnected: %v", err)
	}
	if err := tx.Err(); err != nil {
		t.Fatalf("the sender was disconnected: %v", err)
	}
	for i := range 2 {
		if _, seq := parseSeq(t, recvFrame(t, rx).Payload); seq != i {
			t.Fatalf("frame %d has sequence %d", i, seq)
		}
	}
	// Room again: delivery resumes.
	if err := tx.Send(bus.QoSProcessed, "rx", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if f := recvFrame(t, rx); string(f.Payload) != "after" {
		t.Fatalf("got %s", fmtFrame(f))
	}
}

// TestBlockingSendersDeliverAll: a sender much faster than its reader loses nothing and keeps
// its order when the reader's queue blocks senders.
func TestBlockingSendersDeliverAll(t *testing.T) {
	b := newBroker(t)
	rx := mustRegister(t, b, "rx", bus.WithClientQueue(3), bus.WithBlockingSenders(time.Minute))
	if err := rx.Subscribe(bus.QoSProcessed, "t/#"); err != nil {
		t.Fatal(err)
	}
	const senders, n = 3, 500
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := range senders {
		tx := mustRegister(t, b, fmt.Sprintf("tx%d", s))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				var err error
				switch i % 3 {
				case 0:
					err = tx.Send(bus.QoSProcessed, "rx", seqPayload(s, i))
				case 1:
					err = tx.Publish(bus.QoSProcessed, "t/x", seqPayload(s, i))
				default:
					err = tx.Broadcast(bus.QoSNo, "rx", seqPayload(s, i))
				}
				if err != nil {
					errs <- fmt.Errorf("sender %d frame %d: %w", s, i, err)
					return
				}
			}
		}()
	}
	next := make([]int, senders)
	for range senders * n {
		f := recvFrame(t, rx)
		s, seq := parseSeq(t, f.Payload)
		if seq != next[s] {
			t.Fatalf("sender %d: got sequence %d, want %d", s, seq, next[s])
		}
		next[s]++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := rx.Err(); err != nil {
		t.Fatalf("receiver disconnected: %v", err)
	}
}

// TestBlockedSenderReleasedByClose: a sender waiting for room returns when the receiver goes
// away, or when the broker closes, without waiting out its timeout.
func TestBlockedSenderReleasedByClose(t *testing.T) {
	for _, how := range []string{"client", "force", "broker"} {
		t.Run(how, func(t *testing.T) {
			b := newBroker(t)
			rx := mustRegister(t, b, "rx", bus.WithClientQueue(1), bus.WithBlockingSenders(time.Hour))
			tx := mustRegister(t, b, "tx")
			// Keep the shutdown warning out of the full queue, where Broker.Close would
			// itself wait for room.
			if err := rx.Unsubscribe(bus.QoSProcessed, bus.TopicWarn); err != nil {
				t.Fatal(err)
			}
			if err := tx.Send(bus.QoSProcessed, "rx", nil); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tx.Send(bus.QoSProcessed, "rx", nil) }()
			switch how {
			case "client":
				rx.Close()
			case "force":
				b.ForceDisconnect("rx")
			case "broker":
				b.Close()
			}
			select {
			case err := <-done:
				// Whether the send found the receiver gone or was waiting when it went,
				// the target is not registered any more (or, after Broker.Close, the
				// sender itself is closed).
				if !errors.Is(err, bus.ErrNotRegistered) && !(how == "broker" && errors.Is(err, bus.ErrBrokerClosed)) {
					t.Fatalf("blocked Send returned %v", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("blocked sender not released")
			}
		})
	}
}

// seqPayload encodes a sender index and a sequence number.
func seqPayload(sender, seq int) []byte {
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, uint32(sender)), uint32(seq))
}

func parseSeq(t testing.TB, p []byte) (sender, seq int) {
	t.Helper()
	if len(p) != 8 {
		t.Fatalf("payload % x is not a sequence payload", p)
	}
	return int(binary.LittleEndian.Uint32(p)), int(binary.LittleEndian.Uint32(p[4:]))
}
