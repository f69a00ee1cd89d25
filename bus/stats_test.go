package bus_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

// TestCounters: r_frames/r_bytes count what a client sent as wire bodies (WIRE.md §3), and
// w_frames/w_bytes what was queued to it as wire bodies (WIRE.md §4).
func TestCounters(t *testing.T) {
	deny := policyMap(t, map[string]aaa.Policy{"a": {Publish: aaa.Rule{Allow: []string{"t/#"}}}})
	b := newBroker(t)
	a := mustRegister(t, b, "a", bus.WithClientPolicy(deny))
	rx := mustRegister(t, b, "rx")

	type want struct{ rFrames, rBytes, wFrames, wBytes uint64 }
	check := func(step string, c *bus.Client, w want) {
		t.Helper()
		i := c.Info()
		if i.RFrames != w.rFrames || i.RBytes != w.rBytes || i.WFrames != w.wFrames || i.WBytes != w.wBytes {
			t.Errorf("%s: %s counters r %d/%d w %d/%d, want r %d/%d w %d/%d", step, c.Name(),
				i.RFrames, i.RBytes, i.WFrames, i.WBytes, w.rFrames, w.rBytes, w.wFrames, w.wBytes)
		}
	}
	check("start", a, want{})
	check("start", rx, want{})

	// Subscribe: body "t/+\0x" = 5 bytes, one frame however many topics.
	if err := rx.Subscribe(bus.QoSProcessed, "t/+", "x"); err != nil {
		t.Fatal(err)
	}
	check("subscribe", rx, want{1, 5, 0, 0})
	// Send: body "rx\0hello" = 8; delivered "a\0hello" = 7.
	a.Send(bus.QoSProcessed, "rx", []byte("hello"))
	check("send", a, want{1, 8, 0, 0})
	check("send", rx, want{1, 5, 1, 7})
	// Publish: body "t/1\0xy" = 6; delivered "a\0t/1\0xy" = 8.
	a.Publish(bus.QoSProcessed, "t/1", []byte("xy"))
	check("publish", a, want{2, 14, 0, 0})
	check("publish", rx, want{1, 5, 2, 15})
	// Publish-for: body "t/1\0rx\0z" = 8; delivered "a\0t/1\0z" = 7.
	a.PublishFor(bus.QoSProcessed, "t/1", "rx", []byte("z"))
	check("publish-for", a, want{3, 22, 0, 0})
	check("publish-for", rx, want{1, 5, 3, 22})
	// Broadcast: body "rx\0q" = 4; delivered "a\0q" = 3.
	a.Broadcast(bus.QoSProcessed, "rx", []byte("q"))
	check("broadcast", a, want{4, 26, 0, 0})
	check("broadcast", rx, want{1, 5, 4, 25})
	// Refused and undeliverable frames were still received from the client.
	a.Publish(bus.QoSProcessed, "no", []byte("1234")) // "no\0" + 4 = 7
	a.Send(bus.QoSProcessed, "nobody", nil)           // "nobody\0" = 7
	a.Unsubscribe(bus.QoSProcessed, "a", "", "bc")    // "a\0\0bc" = 5
	a.Exclude(bus.QoSNo, "ex")                        // 2
	a.Unexclude(bus.QoSNo, "ex")                      // 2
	a.Subscribe(bus.QoSNo, "")                        // 0
	check("others", a, want{10, 26 + 7 + 7 + 5 + 2 + 2 + 0, 0, 0})
	check("others", rx, want{1, 5, 4, 25})
	// The queue holds the 4 frames.
	if q := rx.Info().Queue; q != 4 {
		t.Errorf("rx queue %d, want 4", q)
	}
	rx.Send(bus.QoSProcessed, "rx", []byte("end")) // "rx\0end" = 6 both ways
	for range 5 {
		recvFrame(t, rx)
	}
	check("after reading", rx, want{2, 11, 5, 31})
	if q := rx.Info().Queue; q != 0 {
		t.Errorf("rx queue %d after reading everything, want 0", q)
	}

	// Broker totals: every client's counters, .broker's included, departed ones too.
	st := b.Stats()
	if st.RFrames != 12 || st.RBytes != 49+11 || st.WFrames != 5 || st.WBytes != 31 {
		t.Errorf("Stats r %d/%d w %d/%d, want r 12/60 w 5/31", st.RFrames, st.RBytes, st.WFrames, st.WBytes)
	}
	if st.Clients != 3 {
		t.Errorf("Stats().Clients = %d, want 3", st.Clients)
	}
	if st.Uptime < 0 {
		t.Errorf("Uptime %v", st.Uptime)
	}
	rx.Close()
	a.Close()
	st2 := b.Stats()
	if st2.RFrames != st.RFrames || st2.RBytes != st.RBytes || st2.WFrames != st.WFrames || st2.WBytes != st.WBytes {
		t.Errorf("Stats after the clients left %+v, want the same counters as %+v", st2, st)
	}
	if st2.Clients != 1 {
		t.Errorf("Stats().Clients = %d after the clients left, want 1 (.broker)", st2.Clients)
	}
	// Frames sent to .broker count as written to it.
	if _, err := b.ServeSelf(); err != nil {
		t.Fatal(err)
	}
	c := mustRegister(t, b, "c")
	c.Send(bus.QoSProcessed, bus.BrokerName, []byte("x")) // "c\0x" = 3 queued to .broker
	if st3 := b.Stats(); st3.WFrames != st.WFrames+1 || st3.WBytes != st.WBytes+3 {
		t.Errorf("Stats after a frame to .broker: w %d/%d, want %d/%d", st3.WFrames, st3.WBytes, st.WFrames+1, st.WBytes+3)
	}
}

// TestCountersPublishFanOut: a publication counts once as received and once per receiver as
// written.
func TestCountersPublishFanOut(t *testing.T) {
	b := newBroker(t)
	tx := mustRegister(t, b, "tx")
	var subs []*bus.Client
	for _, n := range []string{"s1", "s2", "s3"} {
		subs = append(subs, mustRegister(t, b, n))
	}
	before := b.Stats()
	for _, s := range subs {
		if err := s.Subscribe(bus.QoSProcessed, "n/#"); err != nil {
			t.Fatal(err)
		}
	}
	tx.Publish(bus.QoSProcessed, "n/1", []byte("abc")) // 7 in, "tx\0n/1\0abc" = 10 out each
	st := b.Stats()
	if d := st.RFrames - before.RFrames; d != 4 {
		t.Errorf("r_frames grew by %d, want 4", d)
	}
	if d := st.RBytes - before.RBytes; d != 3*3+7 {
		t.Errorf("r_bytes grew by %d, want 16", d)
	}
	if d := st.WFrames - before.WFrames; d != 3 {
		t.Errorf("w_frames grew by %d, want 3", d)
	}
	if d := st.WBytes - before.WBytes; d != 30 {
		t.Errorf("w_bytes grew by %d, want 30", d)
	}
	for _, s := range subs {
		if i := s.Info(); i.WFrames != 1 || i.WBytes != 10 || i.Queue != 1 {
			t.Errorf("%s: %+v", s.Name(), i)
		}
	}
}

func TestClientsList(t *testing.T) {
	b := newBroker(t)
	tcp := bus.ConnInfo{Kind: bus.KindTCP, Source: netip.MustParseAddrPort("10.0.0.1:5000"), Port: "0.0.0.0:7777"}
	ws := bus.ConnInfo{Kind: bus.KindWebSocket, Source: netip.MustParseAddrPort("[2001:db8::1]:443"), Port: ":8080"}
	ipc := bus.ConnInfo{Kind: bus.KindLocalIPC, Port: "/run/bus.sock"}
	mustRegister(t, b, "zeta")
	mustRegister(t, b, "alpha", bus.WithConnInfo(tcp))
	mustRegister(t, b, "alpha%%1")
	mustRegister(t, b, "alpha%%2", bus.WithConnInfo(ws))
	mustRegister(t, b, "mid.web", bus.WithConnInfo(ws))
	mustRegister(t, b, "Mid", bus.WithConnInfo(ipc))
	mustRegister(t, b, ".inner")
	list := b.Clients()
	var names []string
	for _, ci := range list {
		names = append(names, ci.Name)
	}
	want := []string{".broker", ".inner", "Mid", "alpha", "mid.web", "zeta"}
	if !slices.Equal(names, want) {
		t.Fatalf("Clients() names %q, want %q", names, want)
	}
	if !slices.IsSortedFunc(list, func(a, b bus.ClientInfo) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("Clients() not sorted")
	}
	byName := map[string]bus.ClientInfo{}
	for _, ci := range list {
		byName[ci.Name] = ci
	}
	for name, w := range map[string]bus.ClientInfo{
		".broker": {Kind: bus.KindInternal, Instances: 1},
		".inner":  {Kind: bus.KindInternal, Instances: 1},
		"Mid":     {Kind: bus.KindLocalIPC, Port: "/run/bus.sock", Instances: 1},
		"alpha":   {Kind: bus.KindTCP, Source: "10.0.0.1:5000", Port: "0.0.0.0:7777", Instances: 3},
		"mid.web": {Kind: bus.KindWebSocket, Source: "[2001:db8::1]:443", Port: ":8080", Instances: 1},
		"zeta":    {Kind: bus.KindInternal, Instances: 1},
	} {
		g := byName[name]
		if g.Kind != w.Kind || g.Source != w.Source || g.Port != w.Port || g.Instances != w.Instances {
			t.Errorf("%s: kind %q source %q port %q instances %d; want %q %q %q %d", name,
				g.Kind, g.Source, g.Port, g.Instances, w.Kind, w.Source, w.Port, w.Instances)
		}
	}
	if st := b.Stats(); st.Clients != 8 {
		t.Errorf("Stats().Clients = %d, want 8", st.Clients)
	}
}

// TestQueueLength: Info().Queue counts frames queued and not yet read, up to a full queue.
func TestQueueLength(t *testing.T) {
	b := newBroker(t)
	rx := mustRegister(t, b, "rx", bus.WithClientQueue(10))
	tx := mustRegister(t, b, "tx")
	for i := 1; i <= 10; i++ {
		tx.Send(bus.QoSNo, "rx", nil)
		if q := rx.Info().Queue; q != i {
			t.Fatalf("after %d frames: Queue %d", i, q)
		}
	}
	for range 10 {
		recvFrame(t, rx)
	}
	if q := rx.Info().Queue; q != 0 {
		t.Fatalf("after reading everything: Queue %d", q)
	}
	tx.Send(bus.QoSNo, "rx", nil)
	if q := rx.Info().Queue; q != 1 {
		t.Fatalf("Queue %d, want 1", q)
	}
	for _, ci := range b.Clients() {
		if ci.Name == "rx" && ci.Queue != 1 {
			t.Fatalf("Clients() Queue %d, want 1", ci.Queue)
		}
	}
}

// TestQueueLengthPartlyRead: Info().Queue is "frames queued and not yet read" (ClientInfo doc;
// WIRE.md §9 "current queue length"), also while the reader is part-way through the frames it
// has taken from the queue.
func TestQueueLengthPartlyRead(t *testing.T) {
	b := newBroker(t)
	rx := mustRegister(t, b, "rx")
	tx := mustRegister(t, b, "tx")
	for range 3 {
		tx.Send(bus.QoSNo, "rx", nil)
	}
	recvFrame(t, rx)
	if q := rx.Info().Queue; q != 2 {
		t.Errorf("3 frames queued, 1 read: Queue %d, want 2", q)
	}
	tx.Send(bus.QoSNo, "rx", nil)
	if q := rx.Info().Queue; q != 3 {
		t.Errorf("4 frames queued, 1 read: Queue %d, want 3", q)
	}
	recvFrame(t, rx)
	recvFrame(t, rx)
	if q := rx.Info().Queue; q != 1 {
		t.Errorf("4 frames queued, 3 read: Queue %d, want 1", q)
	}
}

// TestInfoInstances: a primary's own Info counts its secondaries, as Clients does.
func TestInfoInstances(t *testing.T) {
	b := newBroker(t)
	app := mustRegister(t, b, "app")
	s1 := mustRegister(t, b, "app%%1")
	mustRegister(t, b, "app%%2")
	if got := app.Info().Instances; got != 3 {
		t.Fatalf("Instances = %d, want 3", got)
	}
	s1.Close()
	if got := app.Info().Instances; got != 2 {
		t.Fatalf("after a secondary left: Instances = %d, want 2", got)
	}
}

// TestCountersByKind: Stats counts the frames clients send by kind, those of clients that
// left included.
func TestCountersByKind(t *testing.T) {
	b := newBroker(t)
	a := mustRegister(t, b, "a")
	c := mustRegister(t, b, "c")
	before := b.Stats()
	a.Send(bus.QoSProcessed, "c", []byte("x"))
	a.Publish(bus.QoSProcessed, "t/1", []byte("x"))
	c.PublishFor(bus.QoSProcessed, "t/1", "a", []byte("x"))
	c.Broadcast(bus.QoSProcessed, "*", []byte("x"))
	c.Subscribe(bus.QoSProcessed, "t/#") // neither
	c.Close()
	st := b.Stats()
	if d := [3]uint64{st.P2P - before.P2P, st.Publish - before.Publish, st.Broadcast - before.Broadcast}; d != [3]uint64{1, 2, 1} {
		t.Errorf("p2p, publish, broadcast grew by %v, want [1 2 1]", d)
	}
}
