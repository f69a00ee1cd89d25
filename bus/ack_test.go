package bus_test

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/rtbus/rtbus/bus"
)

// TestPushAckOrder: an ack queued after an operation arrives after the frames that
// operation routed to the same client (WIRE.md §5).
func TestPushAckOrder(t *testing.T) {
	b := newBroker(t)
	c := mustRegister(t, b, "self")
	if err := c.Subscribe(bus.QoSProcessed, "t"); err != nil {
		t.Fatal(err)
	}
	err := c.Publish(bus.QoSRealtimeProcessed, "t", []byte("p"))
	if err := c.PushAck(0x01020304, bus.CodeOf(err), true); err != nil {
		t.Fatal(err)
	}
	if f := recvFrame(t, c); f.Kind != bus.KindPublish || string(f.Payload) != "p" {
		t.Fatalf("first frame %s, want the publication", fmtFrame(f))
	}
	f := recvFrame(t, c)
	if f.Kind != bus.KindAck || !f.Realtime {
		t.Fatalf("second frame %s, want a realtime ack", fmtFrame(f))
	}
	if id, code := f.Ack(); id != 0x01020304 || code != bus.CodeOK {
		t.Fatalf("ack id %#x code %#x", id, code)
	}
	if n := c.Info().WFrames; n != 2 {
		t.Fatalf("w_frames %d, want 2 (publication and ack)", n)
	}
}

// TestPushAckOverflow: a client that does not read its acks goes like any slow receiver.
func TestPushAckOverflow(t *testing.T) {
	b := newBroker(t)
	c := mustRegister(t, b, "slow", bus.WithClientQueue(2))
	for i := range 2 {
		if err := c.PushAck(uint32(i), bus.CodeOK, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PushAck(2, bus.CodeOK, false); !errors.Is(err, bus.ErrQueueOverflow) {
		t.Fatalf("third ack: %v, want ErrQueueOverflow", err)
	}
	if err := c.PushAck(3, bus.CodeOK, false); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("after overflow: %v, want ErrClosed", err)
	}
}

// TestFrameSize: frames are copied by value into and out of queues, so their size is watched:
// ack fields live in what was padding, and the one word added since is the Ref of a recycled
// payload buffer.
func TestFrameSize(t *testing.T) {
	if n := unsafe.Sizeof(bus.Frame{}); n > 72 {
		t.Fatalf("Frame is %d bytes, want at most 72", n)
	}
}
