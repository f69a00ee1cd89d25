package bus_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

// TestSendResults: the routing result of a one-to-one frame is returned at an acknowledging
// QoS and swallowed at the others (WIRE.md §5).
func TestSendResults(t *testing.T) {
	deny := aaa.NewMap()
	if err := deny.Set("tx", aaa.Policy{P2P: aaa.Rule{Allow: []string{"allowed"}}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, b *bus.Broker) (tx *bus.Client, target string)
		want  error // at an acknowledging QoS
	}{
		{"delivered", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			mustRegister(t, b, "rx")
			return mustRegister(t, b, "tx"), "rx"
		}, nil},
		{"to itself", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			return mustRegister(t, b, "tx"), "tx"
		}, nil},
		{"to .broker", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			if _, err := b.ServeSelf(); err != nil {
				t.Fatal(err)
			}
			return mustRegister(t, b, "tx"), bus.BrokerName
		}, nil},
		{"to .broker not served", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			return mustRegister(t, b, "tx"), bus.BrokerName
		}, bus.ErrNotRegistered},
		{"not registered", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			return mustRegister(t, b, "tx"), "nobody"
		}, bus.ErrNotRegistered},
		{"primary of a secondary name only", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			mustRegister(t, b, "rx")
			return mustRegister(t, b, "tx"), "rx%%1"
		}, bus.ErrNotRegistered},
		{"departed", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			mustRegister(t, b, "rx").Close()
			return mustRegister(t, b, "tx"), "rx"
		}, bus.ErrNotRegistered},
		{"malformed target", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			return mustRegister(t, b, "tx"), "a\x00b"
		}, bus.ErrNotRegistered},
		{"access denied", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			mustRegister(t, b, "rx")
			return mustRegister(t, b, "tx", bus.WithClientPolicy(deny)), "rx"
		}, bus.ErrAccessDenied},
		{"access denied to a missing target", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			return mustRegister(t, b, "tx", bus.WithClientPolicy(deny)), "nobody"
		}, bus.ErrAccessDenied},
		{"queue full", func(t *testing.T, b *bus.Broker) (*bus.Client, string) {
			mustRegister(t, b, "rx", bus.WithClientQueue(1))
			tx := mustRegister(t, b, "tx")
			if err := tx.Send(bus.QoSProcessed, "rx", []byte("fills the queue")); err != nil {
				t.Fatal(err)
			}
			return tx, "rx"
		}, bus.ErrNotDelivered},
	}
	for _, tc := range cases {
		for _, q := range allQoS {
			t.Run(fmt.Sprintf("%s/%s", tc.name, qosName(q)), func(t *testing.T) {
				b := newBroker(t)
				tx, target := tc.setup(t, b)
				err := tx.Send(q, target, []byte("x"))
				want := tc.want
				if !q.NeedsAck() {
					want = nil
				}
				wantErr(t, "Send", err, want)
				if tx.Err() != nil {
					t.Errorf("sender stopped: %v", tx.Err())
				}
			})
		}
	}
}

// TestOtherResults: publish, publish-for and broadcast return nil even with no receivers, or
// ErrAccessDenied, at an acknowledging QoS; nil always at the others.
func TestOtherResults(t *testing.T) {
	m := aaa.NewMap()
	if err := m.Set("tx", aaa.Policy{
		Publish:   aaa.Rule{Allow: []string{"ok/#"}},
		Broadcast: aaa.Rule{Allow: []string{"ok.*"}},
	}); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		do   func(c *bus.Client, q bus.QoS) error
		want error
	}{
		{"publish without subscribers", func(c *bus.Client, q bus.QoS) error { return c.Publish(q, "ok/x", nil) }, nil},
		{"publish denied", func(c *bus.Client, q bus.QoS) error { return c.Publish(q, "no/x", nil) }, bus.ErrAccessDenied},
		{"publish-for without subscribers", func(c *bus.Client, q bus.QoS) error { return c.PublishFor(q, "ok/x", "rx", nil) }, nil},
		{"publish-for denied", func(c *bus.Client, q bus.QoS) error { return c.PublishFor(q, "no/x", "rx", nil) }, bus.ErrAccessDenied},
		{"broadcast to nobody", func(c *bus.Client, q bus.QoS) error { return c.Broadcast(q, "ok.nobody", nil) }, nil},
		{"broadcast denied", func(c *bus.Client, q bus.QoS) error { return c.Broadcast(q, "no.*", nil) }, bus.ErrAccessDenied},
		{"subscribe", func(c *bus.Client, q bus.QoS) error { return c.Subscribe(q, "a", "b/#") }, nil},
		{"unsubscribe", func(c *bus.Client, q bus.QoS) error { return c.Unsubscribe(q, "a", "never") }, nil},
		{"exclude", func(c *bus.Client, q bus.QoS) error { return c.Exclude(q, "a") }, nil},
		{"unexclude", func(c *bus.Client, q bus.QoS) error { return c.Unexclude(q, "a", "never") }, nil},
	}
	for _, op := range ops {
		for _, q := range allQoS {
			t.Run(fmt.Sprintf("%s/%s", op.name, qosName(q)), func(t *testing.T) {
				b := newBroker(t)
				tx := mustRegister(t, b, "tx", bus.WithClientPolicy(m))
				rx := mustRegister(t, b, "rx")
				if err := rx.Subscribe(bus.QoSProcessed, "no/#"); err != nil {
					t.Fatal(err)
				}
				want := op.want
				if !q.NeedsAck() {
					want = nil
				}
				wantErr(t, op.name, op.do(tx, q), want)
				if op.want != nil {
					expectNothing(t, tx, rx) // a refused frame goes nowhere
				}
			})
		}
	}
}

// TestRealtimeFlag: a delivered frame carries the realtime bit of the sender's QoS.
func TestRealtimeFlag(t *testing.T) {
	b := newBroker(t)
	tx := mustRegister(t, b, "tx")
	rx := mustRegister(t, b, "rx")
	if err := rx.Subscribe(bus.QoSProcessed, "t"); err != nil {
		t.Fatal(err)
	}
	for _, q := range allQoS {
		if err := tx.Send(q, "rx", nil); err != nil {
			t.Fatal(err)
		}
		if err := tx.Publish(q, "t", nil); err != nil {
			t.Fatal(err)
		}
		if err := tx.PublishFor(q, "t", "rx", nil); err != nil {
			t.Fatal(err)
		}
		if err := tx.Broadcast(q, "rx", nil); err != nil {
			t.Fatal(err)
		}
		got := upTo(t, tx, rx)
		if len(got) != 4 {
			t.Fatalf("%s: got %d frames, want 4", qosName(q), len(got))
		}
		for _, f := range got {
			if f.Realtime != (q == bus.QoSRealtime || q == bus.QoSRealtimeProcessed) {
				t.Errorf("%s: %s frame has Realtime %v", qosName(q), f.Kind, f.Realtime)
			}
		}
	}
}

func TestQoSBits(t *testing.T) {
	for _, tc := range []struct {
		q             bus.QoS
		ack, realtime bool
	}{
		{bus.QoSNo, false, false},
		{bus.QoSProcessed, true, false},
		{bus.QoSRealtime, false, true},
		{bus.QoSRealtimeProcessed, true, true},
	} {
		if tc.q.NeedsAck() != tc.ack || tc.q.Realtime() != tc.realtime {
			t.Errorf("%s: NeedsAck %v Realtime %v", qosName(tc.q), tc.q.NeedsAck(), tc.q.Realtime())
		}
	}
}

// TestDeliveredFrames checks every field of each kind of delivered frame, from a primary and
// from a secondary sender.
func TestDeliveredFrames(t *testing.T) {
	for _, sender := range []string{"app.tx", "app.tx%%42"} {
		t.Run(sender, func(t *testing.T) {
			b := newBroker(t)
			rx := mustRegister(t, b, "rx")
			if err := rx.Subscribe(bus.QoSProcessed, "data/#"); err != nil {
				t.Fatal(err)
			}
			if sender != bus.PrimaryName(sender) {
				mustRegister(t, b, bus.PrimaryName(sender))
			}
			tx := mustRegister(t, b, sender)
			payload := []byte("payload bytes")
			tx.Send(bus.QoSProcessed, "rx", payload)
			tx.Publish(bus.QoSProcessed, "data/1", payload)
			tx.PublishFor(bus.QoSProcessed, "data/2", "rx", payload)
			tx.Broadcast(bus.QoSProcessed, "rx", payload)
			tx.Send(bus.QoSProcessed, "rx", nil)
			got := upTo(t, tx, rx)
			want := []struct {
				kind  bus.Kind
				topic string
				empty bool
			}{
				{bus.KindMessage, "", false},
				{bus.KindPublish, "data/1", false},
				{bus.KindPublish, "data/2", false},
				{bus.KindBroadcast, "", false},
				{bus.KindMessage, "", true},
			}
			if len(got) != len(want) {
				t.Fatalf("got %d frames %v, want %d", len(got), fmtFrames(got), len(want))
			}
			for i, w := range want {
				f := got[i]
				if f.Kind != w.kind || f.Topic != w.topic || f.Sender != sender || f.PrimarySender() != "app.tx" || f.Realtime {
					t.Errorf("frame %d: %s, want %s on %q from %q", i, fmtFrame(f), w.kind, w.topic, sender)
				}
				if w.empty {
					if len(f.Payload) != 0 {
						t.Errorf("frame %d: payload %q, want empty", i, f.Payload)
					}
				} else if string(f.Payload) != string(payload) {
					t.Errorf("frame %d: payload %q, want %q", i, f.Payload, payload)
				} else if &f.Payload[0] != &payload[0] {
					t.Errorf("frame %d: payload was copied; the bus shares it", i)
				}
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, s := range map[bus.Kind]string{
		bus.KindPublish: "publish", bus.KindMessage: "message", bus.KindBroadcast: "broadcast", 0x55: "unknown",
	} {
		if k.String() != s {
			t.Errorf("Kind(%#x).String() = %q, want %q", uint8(k), k.String(), s)
		}
	}
	if bus.KindPublish != 0x01 || bus.KindMessage != 0x12 || bus.KindBroadcast != 0x13 {
		t.Error("frame kinds are not the wire kind bytes")
	}
}

func TestPrimaryName(t *testing.T) {
	for in, want := range map[string]string{
		"a": "a", "a.b": "a.b", "a%%x": "a", "a.b%%x.y": "a.b", "a%%x%%y": "a", "%%x": "", "a%x": "a%x",
	} {
		if got := bus.PrimaryName(in); got != want {
			t.Errorf("PrimaryName(%q) = %q, want %q", in, got, want)
		}
		f := bus.Frame{Sender: in}
		if got := f.PrimarySender(); got != want {
			t.Errorf("PrimarySender of %q = %q, want %q", in, got, want)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	codes := map[bus.Error]byte{
		bus.ErrNotRegistered: 0x71, bus.ErrBadData: 0x72, bus.ErrIO: 0x73, bus.ErrOther: 0x74,
		bus.ErrNotSupported: 0x75, bus.ErrBusy: 0x76, bus.ErrNotDelivered: 0x77, bus.ErrTimeout: 0x78,
		bus.ErrAccessDenied: 0x79,
	}
	for e, c := range codes {
		if e.Code() != c || bus.CodeOf(e) != c {
			t.Errorf("%v: Code %#x, CodeOf %#x, want %#x", e, e.Code(), bus.CodeOf(e), c)
		}
		if got := bus.ErrorFromCode(c); got != e {
			t.Errorf("ErrorFromCode(%#x) = %v, want %v", c, got, e)
		}
		if e.Error() == "" {
			t.Errorf("%#x has no text", c)
		}
		wrapped := fmt.Errorf("context: %w", e)
		if bus.CodeOf(wrapped) != c || !errors.Is(wrapped, e) {
			t.Errorf("wrapped %v loses its code", e)
		}
	}
	if bus.CodeOf(nil) != bus.CodeOK || bus.ErrorFromCode(bus.CodeOK) != nil {
		t.Error("OK does not map to nil")
	}
	if bus.CodeOf(errors.New("x")) != byte(bus.ErrOther) {
		t.Error("a foreign error does not map to ErrOther")
	}
	if bus.Error(0x99).Error() == "" {
		t.Error("unknown code has no text")
	}
	d := &bus.DeniedError{Topics: []string{"a"}}
	if !errors.Is(d, bus.ErrAccessDenied) || bus.CodeOf(d) == bus.CodeOK || errors.Is(d, bus.ErrBusy) {
		t.Errorf("DeniedError: Is(ErrAccessDenied) %v, CodeOf %#x", errors.Is(d, bus.ErrAccessDenied), bus.CodeOf(d))
	}
	for _, r := range []error{bus.ErrDisconnected, bus.ErrQueueOverflow, bus.ErrPrimaryGone, bus.ErrBrokerClosed, bus.ErrClosed} {
		if !errors.Is(r, bus.ErrClosed) {
			t.Errorf("%v does not match ErrClosed", r)
		}
	}
	if errors.Is(bus.ErrClosed, bus.ErrDisconnected) || errors.Is(bus.ErrQueueOverflow, bus.ErrPrimaryGone) {
		t.Error("close reasons match each other")
	}
}
