package bus_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtbus/rtbus/bus"
)

func TestRegisterErrors(t *testing.T) {
	tcp := bus.ConnInfo{Kind: bus.KindTCP, Source: netip.MustParseAddrPort("10.0.0.1:5000"), Port: "0.0.0.0:7777"}
	cases := []struct {
		name string
		opts []bus.ClientOption
		want error
	}{
		{"", nil, bus.ErrBadData},
		{"", []bus.ClientOption{bus.WithConnInfo(tcp)}, bus.ErrBadData},
		{"bad\xffutf8", nil, bus.ErrBadData},
		{"\xc3", nil, bus.ErrBadData},
		{"zero\x00byte", nil, bus.ErrBadData},
		{"\x00", nil, bus.ErrBadData},
		{"taken", nil, bus.ErrBusy},
		{"taken%%s", nil, bus.ErrBusy},
		{bus.BrokerName, nil, bus.ErrBusy},
		{"nobody%%1", nil, bus.ErrNotRegistered},
		{"%%x", nil, bus.ErrNotRegistered},
		{"taken.sub%%1", nil, bus.ErrNotRegistered},
		{".dot", []bus.ClientOption{bus.WithConnInfo(tcp)}, bus.ErrBadData},
		{".dot", []bus.ClientOption{bus.WithConnInfo(bus.ConnInfo{Kind: bus.KindLocalIPC})}, bus.ErrBadData},
		{".dot", []bus.ClientOption{bus.WithConnInfo(bus.ConnInfo{Kind: bus.KindWebSocket})}, bus.ErrBadData},
		{".", []bus.ClientOption{bus.WithConnInfo(tcp)}, bus.ErrBadData},
		// Allowed:
		{".dot", nil, nil},
		{".dot", []bus.ClientOption{bus.WithConnInfo(bus.ConnInfo{Kind: bus.KindInternal})}, nil},
		{"taken%%t", nil, nil},
		{"taken%%t", []bus.ClientOption{bus.WithConnInfo(tcp)}, nil},
		{"new", []bus.ClientOption{bus.WithConnInfo(tcp)}, nil},
		{"ünïcødé.名前", nil, nil},
		{"a..b", nil, nil},
		{"taken.sub", nil, nil},
		{"%", nil, nil},
	}
	for _, tc := range cases {
		b := newBroker(t)
		mustRegister(t, b, "taken")
		mustRegister(t, b, "taken%%s")
		c, err := b.RegisterClient(tc.name, tc.opts...)
		if tc.want == nil {
			if err != nil {
				t.Errorf("RegisterClient(%q): %v, want success", tc.name, err)
			} else if c.Name() != tc.name {
				t.Errorf("Name() = %q, want %q", c.Name(), tc.name)
			}
			continue
		}
		if !errors.Is(err, tc.want) || c != nil {
			t.Errorf("RegisterClient(%q, %d opts) = %v, %v; want nil, %v", tc.name, len(tc.opts), c, err, tc.want)
		}
	}
}

func TestRegisterAfterClose(t *testing.T) {
	b := newBroker(t)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, name := range []string{"x", ".x", bus.BrokerName + "%%1"} {
		c, err := b.RegisterClient(name)
		if !errors.Is(err, bus.ErrBrokerClosed) || !errors.Is(err, bus.ErrClosed) || c != nil {
			t.Errorf("RegisterClient(%q) after Close: %v, %v; want ErrBrokerClosed", name, c, err)
		}
	}
	// A bad name is still a bad name.
	if _, err := b.RegisterClient(""); !errors.Is(err, bus.ErrBadData) && !errors.Is(err, bus.ErrBrokerClosed) {
		t.Errorf("RegisterClient(\"\") after Close: %v", err)
	}
}

func TestReregisterAfterClose(t *testing.T) {
	b := newBroker(t)
	c := mustRegister(t, b, "x")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c2 := mustRegister(t, b, "x")
	// The old handle's second Close must not unregister the new client.
	c.Close()
	tx := mustRegister(t, b, "tx")
	if err := tx.Send(bus.QoSProcessed, "x", []byte("hi")); err != nil {
		t.Fatalf("Send to the re-registered client: %v", err)
	}
	if f := expectOne(t, tx, c2); string(f.Payload) != "hi" {
		t.Fatalf("got %s", fmtFrame(f))
	}
}

func TestClosedClientOperations(t *testing.T) {
	b := newBroker(t)
	c := mustRegister(t, b, "c")
	mustRegister(t, b, "other")
	c.Close()
	if err := c.Err(); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done() not closed")
	}
	for _, q := range allQoS {
		ops := map[string]error{
			"Send":        c.Send(q, "other", nil),
			"Publish":     c.Publish(q, "t", nil),
			"PublishFor":  c.PublishFor(q, "t", "other", nil),
			"Broadcast":   c.Broadcast(q, "*", nil),
			"Subscribe":   c.Subscribe(q, "t"),
			"Unsubscribe": c.Unsubscribe(q, "t"),
			"Exclude":     c.Exclude(q, "t"),
			"Unexclude":   c.Unexclude(q, "t"),
		}
		for op, err := range ops {
			if !errors.Is(err, bus.ErrClosed) {
				t.Errorf("%s(%s) on a closed client: %v, want ErrClosed", op, qosName(q), err)
			}
		}
	}
	if err := recvEnd(t, c); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Recv: %v", err)
	}
}

func TestBadTopics(t *testing.T) {
	b := newBroker(t)
	c := mustRegister(t, b, "c")
	for _, topic := range []string{"a\x00b", "bad\xff"} {
		for _, q := range allQoS {
			for op, err := range map[string]error{
				"Publish":     c.Publish(q, topic, nil),
				"PublishFor":  c.PublishFor(q, topic, "c", nil),
				"Subscribe":   c.Subscribe(q, "ok", topic),
				"Unsubscribe": c.Unsubscribe(q, topic),
				"Exclude":     c.Exclude(q, topic),
				"Unexclude":   c.Unexclude(q, topic),
			} {
				if !errors.Is(err, bus.ErrBadData) {
					t.Errorf("%s(%s, %q): %v, want ErrBadData", op, qosName(q), topic, err)
				}
			}
		}
	}
	// A refused Subscribe subscribed nothing, not even its valid topics.
	if err := c.Publish(bus.QoSProcessed, "ok", nil); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, c, c)
	if c.Err() != nil {
		t.Fatalf("client stopped: %v", c.Err())
	}
}

func TestRecvContext(t *testing.T) {
	b := newBroker(t)
	c := mustRegister(t, b, "c")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with a cancelled context: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := c.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv past its deadline: %v", err)
	}
	// The client still works.
	c.Send(bus.QoSProcessed, "c", []byte("after"))
	if f := recvFrame(t, c); string(f.Payload) != "after" {
		t.Fatalf("got %s", fmtFrame(f))
	}
	// A reader waiting in Recv wakes for a frame.
	got := make(chan bus.Frame, 1)
	go func() {
		f, _ := c.Recv(context.Background())
		got <- f
	}()
	c.Send(bus.QoSProcessed, "c", []byte("wake"))
	select {
	case f := <-got:
		if string(f.Payload) != "wake" {
			t.Fatalf("got %s", fmtFrame(f))
		}
	case <-time.After(waitLimit):
		t.Fatal("a waiting reader did not wake")
	}
}

func TestSecondaries(t *testing.T) {
	b := newBroker(t)
	p := mustRegister(t, b, "p")
	s1 := mustRegister(t, b, "p%%1")
	s2 := mustRegister(t, b, "p%%2")
	other := mustRegister(t, b, "q")

	find := func(name string) (bus.ClientInfo, bool) {
		i := slices.IndexFunc(b.Clients(), func(ci bus.ClientInfo) bool { return ci.Name == name })
		if i < 0 {
			return bus.ClientInfo{}, false
		}
		return b.Clients()[i], true
	}
	if ci, ok := find("p"); !ok || ci.Instances != 3 {
		t.Fatalf("Clients() entry of p: %+v (found %v), want Instances 3", ci, ok)
	}
	for _, ci := range b.Clients() {
		if bus.PrimaryName(ci.Name) != ci.Name {
			t.Errorf("Clients() lists secondary %q", ci.Name)
		}
	}
	if st := b.Stats(); st.Clients != 5 { // .broker, p, p%%1, p%%2, q
		t.Errorf("Stats().Clients = %d, want 5", st.Clients)
	}

	// A secondary is a client of its own: one-to-one by full name.
	other.Send(bus.QoSProcessed, "p%%1", []byte("to s1"))
	if f := expectOne(t, other, s1); string(f.Payload) != "to s1" {
		t.Fatalf("s1 got %s", fmtFrame(f))
	}
	expectNothing(t, other, p)

	// A secondary closing leaves its primary and siblings alone.
	s2.Close()
	if ci, _ := find("p"); ci.Instances != 2 {
		t.Fatalf("Instances after a secondary left: %d, want 2", ci.Instances)
	}
	if p.Err() != nil || s1.Err() != nil {
		t.Fatalf("primary or sibling stopped: %v, %v", p.Err(), s1.Err())
	}

	// The primary closing takes its secondaries with it.
	p.Close()
	if err := recvEnd(t, s1); !errors.Is(err, bus.ErrPrimaryGone) || !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("secondary after its primary closed: %v, want ErrPrimaryGone", err)
	}
	if err := s1.Err(); !errors.Is(err, bus.ErrPrimaryGone) {
		t.Fatalf("secondary Err(): %v", err)
	}
	if err := other.Send(bus.QoSProcessed, "p%%1", nil); !errors.Is(err, bus.ErrNotRegistered) {
		t.Fatalf("Send to the departed secondary: %v", err)
	}
	if st := b.Stats(); st.Clients != 2 {
		t.Errorf("Stats().Clients = %d, want 2", st.Clients)
	}
	// The name is free again, and so are the secondaries' names.
	mustRegister(t, b, "p")
	mustRegister(t, b, "p%%1")
}

// TestSecondaryOfForceDisconnected: ForceDisconnect of a primary takes its secondaries too.
func TestSecondaryOfForceDisconnected(t *testing.T) {
	b := newBroker(t)
	p := mustRegister(t, b, "p")
	s := mustRegister(t, b, "p%%s")
	if err := b.ForceDisconnect("p"); err != nil {
		t.Fatal(err)
	}
	if err := recvEnd(t, p); !errors.Is(err, bus.ErrDisconnected) {
		t.Fatalf("primary: %v, want ErrDisconnected", err)
	}
	if err := recvEnd(t, s); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("secondary: %v, want a close reason", err)
	}
	// ForceDisconnect of a secondary alone.
	p = mustRegister(t, b, "p")
	s = mustRegister(t, b, "p%%s")
	if err := b.ForceDisconnect("p%%s"); err != nil {
		t.Fatal(err)
	}
	if err := recvEnd(t, s); !errors.Is(err, bus.ErrDisconnected) {
		t.Fatalf("secondary: %v, want ErrDisconnected", err)
	}
	if p.Err() != nil {
		t.Fatalf("primary stopped with its secondary: %v", p.Err())
	}
}

func TestForceDisconnect(t *testing.T) {
	b := newBroker(t)
	c := mustRegister(t, b, "victim")
	tx := mustRegister(t, b, "tx")
	ended := make(chan error, 1)
	go func() {
		for range c.Frames() {
		}
		ended <- c.Err()
	}()
	if err := b.ForceDisconnect("victim"); err != nil {
		t.Fatalf("ForceDisconnect: %v", err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, bus.ErrDisconnected) || !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("reader ended with %v, want ErrDisconnected", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("reader still running after ForceDisconnect")
	}
	if err := c.Send(bus.QoSProcessed, "tx", nil); !errors.Is(err, bus.ErrDisconnected) {
		t.Fatalf("Send from the disconnected client: %v", err)
	}
	if err := tx.Send(bus.QoSProcessed, "victim", nil); !errors.Is(err, bus.ErrNotRegistered) {
		t.Fatalf("Send to the disconnected client: %v", err)
	}
	for _, name := range []string{"victim", "nobody", "", bus.BrokerName} {
		if err := b.ForceDisconnect(name); !errors.Is(err, bus.ErrNotRegistered) {
			t.Errorf("ForceDisconnect(%q): %v, want ErrNotRegistered", name, err)
		}
	}
	// The name may register again.
	mustRegister(t, b, "victim")
}

// TestDroppingStopDiscardsUnread: Client.Close, ForceDisconnect and a queue overflow drop the
// frames not yet read, so Recv returns the reason at once (Client.Recv: "After the client stops
// it returns the frames still queued, if the stop kept them (Broker.Close does), and then the
// reason"; Client.Close: "frames not yet read are dropped"). That must hold also when the
// reader has already started on the frames queued before the stop.
func TestDroppingStopDiscardsUnread(t *testing.T) {
	stops := []struct {
		name string
		want error
		stop func(t *testing.T, b *bus.Broker, tx, rx *bus.Client)
	}{
		{"Close", bus.ErrClosed, func(t *testing.T, b *bus.Broker, tx, rx *bus.Client) { rx.Close() }},
		{"ForceDisconnect", bus.ErrDisconnected, func(t *testing.T, b *bus.Broker, tx, rx *bus.Client) {
			if err := b.ForceDisconnect("rx"); err != nil {
				t.Fatal(err)
			}
		}},
		{"QueueOverflow", bus.ErrQueueOverflow, func(t *testing.T, b *bus.Broker, tx, rx *bus.Client) {
			for {
				err := tx.Send(bus.QoSProcessed, "rx", []byte{0xff})
				if errors.Is(err, bus.ErrNotDelivered) {
					return
				}
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
		}},
	}
	for _, st := range stops {
		for _, readFirst := range []bool{false, true} {
			name := st.name + "/untouched"
			if readFirst {
				name = st.name + "/reading"
			}
			t.Run(name, func(t *testing.T) {
				b := newBroker(t)
				rx := mustRegister(t, b, "rx", bus.WithClientQueue(4))
				tx := mustRegister(t, b, "tx")
				for i := range 3 {
					if err := tx.Send(bus.QoSProcessed, "rx", []byte{byte(i)}); err != nil {
						t.Fatal(err)
					}
				}
				if readFirst {
					if f := recvFrame(t, rx); f.Payload[0] != 0 {
						t.Fatalf("first frame %s", fmtFrame(f))
					}
				}
				st.stop(t, b, tx, rx)
				ctx, cancel := recvCtx(t)
				defer cancel()
				if f, err := rx.Recv(ctx); !errors.Is(err, st.want) {
					t.Fatalf("Recv after the stop: frame %s, err %v; want %v and no frame", fmtFrame(f), err, st.want)
				}
			})
		}
	}
}

// TestBrokerCloseDrains: frames queued before Close stay readable, the shutdown warning comes
// after them, and then Recv reports ErrBrokerClosed.
func TestBrokerCloseDrains(t *testing.T) {
	b := newBroker(t)
	rx := mustRegister(t, b, "rx")
	quiet := mustRegister(t, b, "quiet")
	tx := mustRegister(t, b, "tx")
	if err := quiet.Unsubscribe(bus.QoSProcessed, bus.TopicWarn); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		tx.Send(bus.QoSProcessed, "rx", []byte{byte(i)})
		tx.Send(bus.QoSProcessed, "quiet", []byte{byte(i)})
	}
	// rx has started on its queue before Close.
	if f := recvFrame(t, rx); f.Payload[0] != 0 {
		t.Fatalf("got %s", fmtFrame(f))
	}
	before := uint64(time.Now().UnixNano())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	after := uint64(time.Now().UnixNano())
	for i := 1; i < n; i++ {
		f := recvFrame(t, rx)
		if f.Kind != bus.KindMessage || f.Payload[0] != byte(i) {
			t.Fatalf("frame %d: %s", i, fmtFrame(f))
		}
	}
	f := recvFrame(t, rx)
	checkShutdown(t, f, before, after)
	if err := recvEnd(t, rx); !errors.Is(err, bus.ErrBrokerClosed) || !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Recv after draining: %v, want ErrBrokerClosed", err)
	}
	if err := recvEnd(t, rx); !errors.Is(err, bus.ErrBrokerClosed) {
		t.Fatalf("Recv again: %v", err)
	}

	// Frames() drains the rest and ends; a client that unsubscribed from .broker/warn gets
	// no warning.
	var got []bus.Frame
	for f := range quiet.Frames() {
		got = append(got, f)
	}
	if len(got) != n {
		t.Fatalf("Frames() yielded %d frames, want %d", len(got), n)
	}
	for i, f := range got {
		if f.Kind != bus.KindMessage || f.Payload[0] != byte(i) {
			t.Fatalf("frame %d: %s", i, fmtFrame(f))
		}
	}
	if err := quiet.Err(); !errors.Is(err, bus.ErrBrokerClosed) {
		t.Fatalf("Err() after Frames ended: %v", err)
	}

	// Every operation now reports the close.
	if err := tx.Send(bus.QoSNo, "rx", nil); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Send after broker Close: %v", err)
	}
	if err := b.ForceDisconnect("tx"); !errors.Is(err, bus.ErrNotRegistered) {
		t.Fatalf("ForceDisconnect after broker Close: %v", err)
	}
}

func TestFramesIteratorStopsOnBreak(t *testing.T) {
	b := newBroker(t)
	c := mustRegister(t, b, "c")
	for i := range 5 {
		c.Send(bus.QoSProcessed, "c", []byte{byte(i)})
	}
	n := 0
	for f := range c.Frames() {
		if f.Payload[0] != byte(n) {
			t.Fatalf("frame %d: %s", n, fmtFrame(f))
		}
		if n++; n == 2 {
			break
		}
	}
	// The rest is still there.
	if got := upTo(t, c, c); len(got) != 3 {
		t.Fatalf("after break: %d frames left, want 3", len(got))
	}
}

// checkShutdown checks the shutdown warning: a publication by .broker on .broker/warn whose
// payload is the MessagePack map {"s":"shutdown","t":ns}, keys in that order.
func checkShutdown(t *testing.T, f bus.Frame, before, after uint64) {
	t.Helper()
	if f.Kind != bus.KindPublish || f.Sender != bus.BrokerName || f.Topic != bus.TopicWarn {
		t.Fatalf("got %s, want the shutdown warning", fmtFrame(f))
	}
	if len(f.Payload) == 0 || f.Payload[0] != 0x82 {
		t.Fatalf("shutdown payload % x: want a 2-entry fixmap (0x82)", f.Payload)
	}
	d := msgpack.NewDecoder(bytes.NewReader(f.Payload))
	n, err := d.DecodeMapLen()
	if err != nil || n != 2 {
		t.Fatalf("map length %d, %v", n, err)
	}
	if k, err := d.DecodeString(); err != nil || k != "s" {
		t.Fatalf("first key %q, %v; want \"s\"", k, err)
	}
	if v, err := d.DecodeString(); err != nil || v != "shutdown" {
		t.Fatalf("s = %q, %v", v, err)
	}
	if k, err := d.DecodeString(); err != nil || k != "t" {
		t.Fatalf("second key %q, %v; want \"t\"", k, err)
	}
	ts, err := d.DecodeUint64()
	if err != nil {
		t.Fatal(err)
	}
	if ts < before || ts > after {
		t.Errorf("t = %d, not between %d and %d (nanoseconds since the epoch)", ts, before, after)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(f.Payload, &m); err != nil || m["s"] != "shutdown" || len(m) != 2 {
		t.Errorf("decoded %v, %v", m, err)
	}
}

type announcement struct {
	s, d string
	t    uint64
}

// decodeAnnouncement decodes a .broker/info payload, checking that it is a 3-entry map with
// the keys s, d, t in that order.
func decodeAnnouncement(t *testing.T, f bus.Frame) announcement {
	t.Helper()
	if f.Kind != bus.KindPublish || f.Sender != bus.BrokerName || f.Topic != bus.TopicInfo {
		t.Fatalf("got %s, want an announcement on %s", fmtFrame(f), bus.TopicInfo)
	}
	if len(f.Payload) == 0 || f.Payload[0] != 0x83 {
		t.Fatalf("announcement % x: want a 3-entry fixmap (0x83)", f.Payload)
	}
	d := msgpack.NewDecoder(bytes.NewReader(f.Payload))
	if n, err := d.DecodeMapLen(); err != nil || n != 3 {
		t.Fatalf("map length %d, %v", n, err)
	}
	var a announcement
	for _, want := range []string{"s", "d"} {
		k, err := d.DecodeString()
		if err != nil || k != want {
			t.Fatalf("key %q, %v; want %q", k, err, want)
		}
		v, err := d.DecodeString()
		if err != nil {
			t.Fatal(err)
		}
		if want == "s" {
			a.s = v
		} else {
			a.d = v
		}
	}
	if k, err := d.DecodeString(); err != nil || k != "t" {
		t.Fatalf("third key %q, %v; want \"t\"", k, err)
	}
	var err error
	if a.t, err = d.DecodeUint64(); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAnnouncements(t *testing.T) {
	b := newBroker(t, bus.WithQueueSize(64))
	mon := mustRegister(t, b, "mon")
	if err := mon.Subscribe(bus.QoSProcessed, bus.TopicInfo); err != nil {
		t.Fatal(err)
	}
	start := uint64(time.Now().UnixNano())
	want := func(events ...string) {
		t.Helper()
		end := uint64(time.Now().UnixNano())
		got := upTo(t, mon, mon)
		var names []string
		for _, f := range got {
			a := decodeAnnouncement(t, f)
			names = append(names, a.s+" "+a.d)
			if a.t < start || a.t > end {
				t.Errorf("%s %s: t = %d, not between %d and %d", a.s, a.d, a.t, start, end)
			}
		}
		if !slices.Equal(names, events) {
			t.Fatalf("announcements %q, want %q", names, events)
		}
	}

	p := mustRegister(t, b, "p")
	want("reg p")
	s := mustRegister(t, b, "p%%1")
	want() // secondaries are not announced
	s.Close()
	want()
	s = mustRegister(t, b, "p%%1")
	p.Close() // takes p%%1 with it: one announcement
	want("unreg p")
	_ = s

	d := mustRegister(t, b, ".svc")
	want("reg .svc")
	d.Close()
	want("unreg .svc")

	f := mustRegister(t, b, "forced")
	if err := b.ForceDisconnect("forced"); err != nil {
		t.Fatal(err)
	}
	want("reg forced", "unreg forced")
	_ = f

	// A slow receiver dropped for overflow is announced as gone.
	slow := mustRegister(t, b, "slow", bus.WithClientQueue(1))
	tx := mustRegister(t, b, "tx")
	tx.Send(bus.QoSProcessed, "slow", nil)
	if err := tx.Send(bus.QoSProcessed, "slow", nil); !errors.Is(err, bus.ErrNotDelivered) {
		t.Fatalf("Send to a full queue: %v", err)
	}
	want("reg slow", "reg tx", "unreg slow")
	_ = slow

	// Failed registrations announce nothing.
	b.RegisterClient("tx")
	b.RegisterClient("nobody%%1")
	b.RegisterClient("")
	want()

	// Broker.Close announces no unregistrations; the monitor gets the shutdown warning.
	before := uint64(time.Now().UnixNano())
	b.Close()
	after := uint64(time.Now().UnixNano())
	checkShutdown(t, recvFrame(t, mon), before, after)
	if err := recvEnd(t, mon); !errors.Is(err, bus.ErrBrokerClosed) {
		t.Fatalf("after the warning: %v", err)
	}
}

// TestWarnSubscription: every client, secondaries included, is subscribed to .broker/warn on
// registration; unsubscribing from it works like any topic.
func TestWarnSubscription(t *testing.T) {
	b := newBroker(t)
	names := []string{"a", "a%%1", ".in", "b.c"}
	var cs []*bus.Client
	for _, n := range names {
		cs = append(cs, mustRegister(t, b, n))
	}
	off := mustRegister(t, b, "off")
	if err := off.Unsubscribe(bus.QoSProcessed, bus.TopicWarn); err != nil {
		t.Fatal(err)
	}
	tx := mustRegister(t, b, "tx")
	// A client may publish on .broker/warn like anyone (no policy here); everyone gets it.
	if err := tx.Publish(bus.QoSProcessed, bus.TopicWarn, []byte("heads up")); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		f := expectOne(t, tx, c)
		if f.Topic != bus.TopicWarn || string(f.Payload) != "heads up" {
			t.Errorf("%s got %s", c.Name(), fmtFrame(f))
		}
	}
	expectOne(t, tx, tx) // tx is subscribed too
	expectNothing(t, tx, off)
	before := uint64(time.Now().UnixNano())
	b.Close()
	after := uint64(time.Now().UnixNano())
	for _, c := range append(cs, tx) {
		checkShutdown(t, recvFrame(t, c), before, after)
		if err := recvEnd(t, c); !errors.Is(err, bus.ErrBrokerClosed) {
			t.Errorf("%s: %v", c.Name(), err)
		}
	}
	if err := recvEnd(t, off); !errors.Is(err, bus.ErrBrokerClosed) {
		t.Errorf("off: %v", err)
	}
}
