package rpc_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rtbus/rtbus/bus"
)

// TestCall0RefusedAllocs: a call0 or a notification refused by the bus over a socket costs
// the *Error it returns, nothing more: the frame is pooled (it once cost one allocation, and
// errors.As on the hot path a second).
// Run without -race, whose sync.Pool drops items at random.
func TestCall0RefusedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	e := overSocket(t)
	c := e.rpc(t, "caller")
	payload := bytes.Repeat([]byte{0x5a}, 100)
	n := testing.AllocsPerRun(2000, func() {
		if err := c.Call0("nobody", "benchmark.test", payload); !errors.Is(err, bus.ErrNotRegistered) {
			t.Fatal(err)
		}
	})
	if n > 1 { // the *Error
		t.Fatalf("%v allocations per refused call0, want at most 1", n)
	}
	n = testing.AllocsPerRun(2000, func() {
		if err := c.Notify("nobody", payload); !errors.Is(err, bus.ErrNotRegistered) {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Fatalf("%v allocations per refused notification, want at most 1", n)
	}
}
