package bus_test

import (
	"testing"

	"github.com/rtbus/rtbus/bus"
)

// TestRoutingAllocatesNothing: sending, publishing and taking frames allocate nothing once
// queues are warm, with and without a held Ref, and with .broker served in the routing
// goroutine (whose handler gets each frame by value, so that routing's frame stays on the
// stack). Benchmarks measure the speed; this keeps the allocation count from creeping up.
func TestRoutingAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (sync.Pool drops at random); .ci/run runs this test without it")
	}
	b := bus.New()
	defer b.Close()
	if _, err := b.ServeSelfFunc(func(bus.Frame) {}); err != nil {
		t.Fatal(err)
	}
	tx, _ := b.RegisterClient("tx")
	rx, _ := b.RegisterClient("rx")
	if err := rx.Subscribe(bus.QoSProcessed, "t/#"); err != nil {
		t.Fatal(err)
	}
	ref := bus.NewRef(func() {})
	payload := []byte("payload")
	frames := make([]bus.Frame, 0, 16)
	round := func() {
		tx.Send(bus.QoSProcessed, "rx", payload)
		tx.Publish(bus.QoSNo, "t/1", payload)
		tx.Send(bus.QoSProcessed, bus.BrokerName, payload)
		tx.Hold(ref)
		tx.Send(bus.QoSNo, "rx", payload)
		tx.Hold(nil)
		frames = rx.TakeBatch(frames[:0], 0)
		for i := range frames {
			frames[i].Release()
		}
	}
	round() // warm the queues' buffers
	if n := testing.AllocsPerRun(1000, round); n != 0 {
		t.Fatalf("%v allocations per round, want 0", n)
	}
}
