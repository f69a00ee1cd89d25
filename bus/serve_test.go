package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

func TestServeSelf(t *testing.T) {
	b := bus.New()
	defer b.Close()
	c, _ := b.RegisterClient("c")
	// Before anyone serves it, .broker takes and drops what it is sent.
	if err := c.Send(bus.QoSProcessed, bus.BrokerName, []byte("dropped")); err != nil {
		t.Fatal(err)
	}
	self, err := b.ServeSelf()
	if err != nil {
		t.Fatal(err)
	}
	if self.Name() != bus.BrokerName {
		t.Fatalf("name %q", self.Name())
	}
	if _, err := b.ServeSelf(); !errors.Is(err, bus.ErrBusy) {
		t.Errorf("second ServeSelf: %v", err)
	}
	if err := c.Send(bus.QoSProcessed, bus.BrokerName, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := self.Recv(ctx)
	if err != nil || string(f.Payload) != "kept" || f.Sender != "c" {
		t.Fatalf("got %+v, %v", f, err)
	}
	// .broker is still listed once, and still subscribed to the warnings.
	n := 0
	for _, ci := range b.Clients() {
		if ci.Name == bus.BrokerName {
			n++
		}
	}
	if n != 1 {
		t.Errorf(".broker listed %d times", n)
	}
	if err := b.ForceDisconnect(bus.BrokerName); !errors.Is(err, bus.ErrNotRegistered) {
		t.Errorf("ForceDisconnect(.broker) = %v", err)
	}
	b.Close()
	if _, err := self.Recv(ctx); err == nil {
		// the shutdown warning is queued first
		if _, err := self.Recv(ctx); !errors.Is(err, bus.ErrBrokerClosed) {
			t.Errorf("after Close: %v", err)
		}
	}
	b2 := bus.New()
	b2.Close()
	if _, err := b2.ServeSelf(); !errors.Is(err, bus.ErrBrokerClosed) {
		t.Errorf("ServeSelf after Close: %v", err)
	}
}
