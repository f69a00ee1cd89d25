package bus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

// waitLimit only keeps a broken test from hanging; no test asserts on how long anything takes.
const waitLimit = 5 * time.Second

// newBroker returns a broker that logs nowhere and is closed when the test ends.
func newBroker(t testing.TB, opts ...bus.Option) *bus.Broker {
	t.Helper()
	all := append([]bus.Option{bus.WithLogger(quietLogger())}, opts...)
	b := bus.New(all...)
	t.Cleanup(func() { b.Close() })
	return b
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustRegister(t testing.TB, b *bus.Broker, name string, opts ...bus.ClientOption) *bus.Client {
	t.Helper()
	c, err := b.RegisterClient(name, opts...)
	if err != nil {
		t.Fatalf("RegisterClient(%q): %v", name, err)
	}
	return c
}

func recvCtx(t testing.TB) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithTimeout(context.Background(), waitLimit)
}

// recvFrame returns the next frame of c, failing the test if there is none.
func recvFrame(t testing.TB, c *bus.Client) bus.Frame {
	t.Helper()
	ctx, cancel := recvCtx(t)
	defer cancel()
	f, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("%s: Recv: %v", c.Name(), err)
	}
	return f
}

// recvEnd expects Recv to report that c stopped, and returns the reason.
func recvEnd(t testing.TB, c *bus.Client) error {
	t.Helper()
	ctx, cancel := recvCtx(t)
	defer cancel()
	f, err := c.Recv(ctx)
	if err == nil {
		t.Fatalf("%s: Recv returned a frame %s, want the client stopped", c.Name(), fmtFrame(f))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: Recv still waiting after %v, want the client stopped", c.Name(), waitLimit)
	}
	return err
}

func fmtFrame(f bus.Frame) string {
	return fmt.Sprintf("{%s from %q topic %q payload %q realtime %v}", f.Kind, f.Sender, f.Topic, f.Payload, f.Realtime)
}

var sentinelSeq atomic.Uint64

// upTo returns the frames queued to rx so far. It has probe send rx a unique message and
// reads until that message arrives: routing is synchronous, so every frame routed to rx before
// the call is queued ahead of the sentinel. probe may be rx itself.
func upTo(t testing.TB, probe, rx *bus.Client) []bus.Frame {
	t.Helper()
	mark := fmt.Appendf(nil, "\x00sentinel-%d", sentinelSeq.Add(1))
	if err := probe.Send(bus.QoSProcessed, rx.Name(), mark); err != nil {
		t.Fatalf("sentinel from %s to %s: %v", probe.Name(), rx.Name(), err)
	}
	var got []bus.Frame
	for {
		f := recvFrame(t, rx)
		if f.Kind == bus.KindMessage && f.Sender == probe.Name() && bytes.Equal(f.Payload, mark) {
			return got
		}
		got = append(got, f)
	}
}

// expectNothing fails the test if any frame is queued to rx.
func expectNothing(t testing.TB, probe, rx *bus.Client) {
	t.Helper()
	if got := upTo(t, probe, rx); len(got) != 0 {
		t.Fatalf("%s received %d unexpected frame(s), first %s", rx.Name(), len(got), fmtFrame(got[0]))
	}
}

// expectOne returns the one frame queued to rx, failing if there are none or several.
func expectOne(t testing.TB, probe, rx *bus.Client) bus.Frame {
	t.Helper()
	got := upTo(t, probe, rx)
	if len(got) != 1 {
		t.Fatalf("%s received %d frames, want 1: %v", rx.Name(), len(got), fmtFrames(got))
	}
	return got[0]
}

func fmtFrames(fs []bus.Frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = fmtFrame(f)
	}
	return out
}

// eventually polls cond until it holds, failing the test after waitLimit. The sleeps only
// pace the polling.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not true after %v: %s", waitLimit, what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// wantErr checks errors.Is(err, want), with want nil meaning no error.
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s: got error %v, want nil", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want an error matching %v", what, err, want)
	}
}

var allQoS = []bus.QoS{bus.QoSNo, bus.QoSProcessed, bus.QoSRealtime, bus.QoSRealtimeProcessed}

func qosName(q bus.QoS) string {
	return [...]string{"QoSNo", "QoSProcessed", "QoSRealtime", "QoSRealtimeProcessed"}[q]
}
