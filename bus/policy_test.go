package bus_test

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

func tcpFrom(addr string) bus.ClientOption {
	return bus.WithConnInfo(bus.ConnInfo{Kind: bus.KindTCP, Source: netip.MustParseAddrPort(addr), Port: "0.0.0.0:7777"})
}

func policyMap(t *testing.T, policies map[string]aaa.Policy) *aaa.Map {
	t.Helper()
	m := aaa.NewMap()
	for name, p := range policies {
		if err := m.Set(name, p); err != nil {
			t.Fatalf("Set(%q): %v", name, err)
		}
	}
	return m
}

func TestPolicyRegistration(t *testing.T) {
	m := policyMap(t, map[string]aaa.Policy{
		"open":   {},
		"lan":    {Hosts: []string{"10.0.0.0/8", "::1"}},
		"single": {Hosts: []string{"192.168.1.5"}},
	})
	cases := []struct {
		name string
		opts []bus.ClientOption
		want error
	}{
		{"open", nil, nil},
		{"open", []bus.ClientOption{tcpFrom("203.0.113.9:1")}, nil},
		{"stranger", nil, bus.ErrAccessDenied},
		{"stranger", []bus.ClientOption{tcpFrom("10.0.0.1:5000")}, bus.ErrAccessDenied},
		{"lan", []bus.ClientOption{tcpFrom("10.0.0.1:5000")}, nil},
		{"lan", []bus.ClientOption{tcpFrom("10.255.255.255:1")}, nil},
		{"lan", []bus.ClientOption{tcpFrom("[::1]:5000")}, nil},
		{"lan", []bus.ClientOption{tcpFrom("[::ffff:10.1.2.3]:5000")}, nil},
		{"lan", []bus.ClientOption{tcpFrom("11.0.0.1:5000")}, bus.ErrAccessDenied},
		{"lan", []bus.ClientOption{tcpFrom("[::2]:5000")}, bus.ErrAccessDenied},
		{"lan", nil, nil}, // no network address: hosts do not apply
		{"lan", []bus.ClientOption{bus.WithConnInfo(bus.ConnInfo{Kind: bus.KindLocalIPC})}, nil},
		{"single", []bus.ClientOption{tcpFrom("192.168.1.5:9")}, nil},
		{"single", []bus.ClientOption{tcpFrom("192.168.1.6:9")}, bus.ErrAccessDenied},
		{".internal", nil, nil}, // dot-names belong to the broker and are never checked
		{"open.sub", nil, bus.ErrAccessDenied},
	}
	for _, tc := range cases {
		b := newBroker(t, bus.WithPolicy(m))
		c, err := b.RegisterClient(tc.name, tc.opts...)
		if tc.want == nil {
			if err != nil {
				t.Errorf("RegisterClient(%q) with %d opts: %v, want success", tc.name, len(tc.opts), err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || c != nil {
			t.Errorf("RegisterClient(%q) with %d opts: %v, %v; want %v", tc.name, len(tc.opts), c, err, tc.want)
		}
	}
}

// TestClientPolicyOverridesBroker: WithClientPolicy replaces the broker's policy for one
// client; a nil map allows everything.
func TestClientPolicyOverridesBroker(t *testing.T) {
	brokerMap := policyMap(t, map[string]aaa.Policy{"a": {}})
	listenerMap := policyMap(t, map[string]aaa.Policy{"b": {Publish: aaa.Rule{Deny: true}}})
	b := newBroker(t, bus.WithPolicy(brokerMap))
	mustRegister(t, b, "a")
	if _, err := b.RegisterClient("b"); !errors.Is(err, bus.ErrAccessDenied) {
		t.Fatalf("b under the broker's policy: %v", err)
	}
	if _, err := b.RegisterClient("a2", bus.WithClientPolicy(listenerMap)); !errors.Is(err, bus.ErrAccessDenied) {
		t.Fatalf("a2 under the listener's policy: %v", err)
	}
	cb := mustRegister(t, b, "b", bus.WithClientPolicy(listenerMap))
	if err := cb.Publish(bus.QoSProcessed, "x", nil); !errors.Is(err, bus.ErrAccessDenied) {
		t.Fatalf("b's own rules not applied: Publish gave %v", err)
	}
	free := mustRegister(t, b, "anyone", bus.WithClientPolicy(nil))
	if err := free.Publish(bus.QoSProcessed, "x", nil); err != nil {
		t.Fatalf("nil client policy: %v", err)
	}
}

func TestPolicyOperations(t *testing.T) {
	m := policyMap(t, map[string]aaa.Policy{
		"app": {
			P2P:       aaa.Rule{Allow: []string{"peer", "svc.*"}},
			Publish:   aaa.Rule{Allow: []string{"news/#", "unit/+/status"}},
			Subscribe: aaa.Rule{Allow: []string{"news/#"}},
			Broadcast: aaa.Rule{Allow: []string{"svc.*"}},
		},
		"mute": {
			P2P: aaa.Rule{Deny: true}, Publish: aaa.Rule{Deny: true},
			Subscribe: aaa.Rule{Deny: true}, Broadcast: aaa.Rule{Deny: true},
		},
		"peer":   {},
		"svc.a":  {},
		"svc.b":  {},
		"other":  {},
		"listen": {},
	})
	b := newBroker(t, bus.WithPolicy(m))
	clients := map[string]*bus.Client{}
	for _, n := range []string{"peer", "peer%%2", "svc.a", "svc.b", "other", "listen", "listen%%l", "mute", "app", "app%%1"} {
		clients[n] = mustRegister(t, b, n)
	}
	app, appSec := clients["app"], clients["app%%1"] // the secondary shares app's rules
	lis := clients["listen%%l"]
	if err := lis.Subscribe(bus.QoSProcessed, "#"); err != nil {
		t.Fatal(err)
	}

	for _, c := range []*bus.Client{app, appSec} {
		t.Run(c.Name(), func(t *testing.T) {
			ops := []struct {
				what string
				err  error
				want error
			}{
				{"p2p peer", c.Send(bus.QoSProcessed, "peer", nil), nil},
				{"p2p peer's secondary", c.Send(bus.QoSProcessed, "peer%%2", nil), nil},
				{"p2p svc.a", c.Send(bus.QoSProcessed, "svc.a", nil), nil},
				{"p2p other", c.Send(bus.QoSProcessed, "other", nil), bus.ErrAccessDenied},
				{"p2p other QoS3", c.Send(bus.QoSRealtimeProcessed, "other", nil), bus.ErrAccessDenied},
				{"p2p other QoS0", c.Send(bus.QoSNo, "other", nil), nil},
				{"p2p itself", c.Send(bus.QoSProcessed, c.Name(), nil), bus.ErrAccessDenied},
				{"publish news/x", c.Publish(bus.QoSProcessed, "news/x", nil), nil},
				{"publish unit/1/status", c.Publish(bus.QoSProcessed, "unit/1/status", nil), nil},
				{"publish news", c.Publish(bus.QoSProcessed, "news", nil), bus.ErrAccessDenied},
				{"publish unit/1/cmd", c.Publish(bus.QoSProcessed, "unit/1/cmd", nil), bus.ErrAccessDenied},
				{"publish QoS2 denied", c.Publish(bus.QoSRealtime, "secret", nil), nil},
				{"publish-for news/x", c.PublishFor(bus.QoSProcessed, "news/x", "listen", nil), nil},
				{"publish-for secret", c.PublishFor(bus.QoSProcessed, "secret", "listen", nil), bus.ErrAccessDenied},
				{"broadcast svc.*", c.Broadcast(bus.QoSProcessed, "svc.*", nil), nil},
				{"broadcast svc.?", c.Broadcast(bus.QoSProcessed, "svc.?", nil), nil},
				{"broadcast svc.a", c.Broadcast(bus.QoSProcessed, "svc.a", nil), nil},
				{"broadcast *", c.Broadcast(bus.QoSProcessed, "*", nil), bus.ErrAccessDenied},
				{"broadcast other", c.Broadcast(bus.QoSProcessed, "other", nil), bus.ErrAccessDenied},
			}
			for _, op := range ops {
				wantErr(t, op.what, op.err, op.want)
			}
		})
	}

	// What was refused reached nobody; what was allowed arrived.
	probe := clients["peer"] // no restrictions
	expectNothing(t, probe, clients["other"])
	got := upTo(t, probe, lis)
	var topics []string
	for _, f := range got {
		if f.Kind == bus.KindPublish {
			topics = append(topics, f.Topic)
		}
	}
	// From app and then app%%1: news/x, unit/1/status, and the publish-for news/x (for
	// "listen", the primary of listen%%l); nothing refused.
	want := []string{"news/x", "unit/1/status", "news/x", "news/x", "unit/1/status", "news/x"}
	if !slices.Equal(topics, want) {
		t.Errorf("the listener saw publications %q, want %q", topics, want)
	}

	mute := clients["mute"]
	for _, op := range []struct {
		what string
		err  error
	}{
		{"p2p", mute.Send(bus.QoSProcessed, "peer", nil)},
		{"publish", mute.Publish(bus.QoSProcessed, "x", nil)},
		{"publish-for", mute.PublishFor(bus.QoSProcessed, "x", "peer", nil)},
		{"broadcast", mute.Broadcast(bus.QoSProcessed, "peer", nil)},
		{"subscribe", mute.Subscribe(bus.QoSProcessed, "x")},
	} {
		wantErr(t, "mute "+op.what, op.err, bus.ErrAccessDenied)
	}
	// Unsubscribe, exclude and unexclude are never refused.
	for _, err := range []error{
		mute.Unsubscribe(bus.QoSProcessed, "x", bus.TopicWarn),
		mute.Exclude(bus.QoSProcessed, "x"),
		mute.Unexclude(bus.QoSProcessed, "x"),
	} {
		wantErr(t, "mute topic op", err, nil)
	}
}

func TestPolicySubscribePartial(t *testing.T) {
	m := policyMap(t, map[string]aaa.Policy{
		"sub": {Subscribe: aaa.Rule{Allow: []string{"news/#", "unit/+/status"}}},
		"pub": {},
	})
	b := newBroker(t, bus.WithPolicy(m))
	sub := mustRegister(t, b, "sub")
	pub := mustRegister(t, b, "pub")
	for _, q := range allQoS {
		err := sub.Subscribe(q, "news/a", "secret", "news/+/x", "unit/+/status", "unit/#", "news", "#")
		if !q.NeedsAck() {
			wantErr(t, "partial Subscribe at "+qosName(q), err, nil)
			continue
		}
		var d *bus.DeniedError
		if !errors.As(err, &d) || !errors.Is(err, bus.ErrAccessDenied) {
			t.Fatalf("Subscribe at %s: %v, want a *DeniedError", qosName(q), err)
		}
		if want := []string{"secret", "unit/#", "news", "#"}; !slices.Equal(d.Topics, want) {
			t.Fatalf("refused topics %q, want %q", d.Topics, want)
		}
		if d.Error() == "" {
			t.Fatal("DeniedError has no text")
		}
	}
	// Nothing refused: no error.
	if err := sub.Subscribe(bus.QoSProcessed, "news/b"); err != nil {
		t.Fatalf("allowed Subscribe: %v", err)
	}
	for _, topic := range []string{"news/a", "news/q/x", "unit/1/status", "secret", "unit/1/cmd", "news"} {
		pub.Publish(bus.QoSProcessed, topic, nil)
	}
	var topics []string
	for _, f := range upTo(t, pub, sub) {
		topics = append(topics, f.Topic)
	}
	if want := []string{"news/a", "news/q/x", "unit/1/status"}; !slices.Equal(topics, want) {
		t.Fatalf("subscriber got %q, want %q (the refused topics must not be subscribed)", topics, want)
	}
}

// TestPolicyCopiedAtConnect: changing the map affects later connections only; ForceDisconnect
// and registering again applies the change (aaa.Map's contract).
func TestPolicyCopiedAtConnect(t *testing.T) {
	m := policyMap(t, map[string]aaa.Policy{"app": {}, "peer": {}})
	b := newBroker(t, bus.WithPolicy(m))
	app := mustRegister(t, b, "app")
	mustRegister(t, b, "peer")
	if err := m.Set("app", aaa.Policy{P2P: aaa.Rule{Deny: true}, Publish: aaa.Rule{Deny: true}}); err != nil {
		t.Fatal(err)
	}
	if err := app.Send(bus.QoSProcessed, "peer", nil); err != nil {
		t.Fatalf("connected client affected by the map change: %v", err)
	}
	if err := app.Publish(bus.QoSProcessed, "t", nil); err != nil {
		t.Fatalf("connected client affected by the map change: %v", err)
	}
	// A secondary registered now takes the primary's rules as they were copied.
	sec := mustRegister(t, b, "app%%1")
	if err := sec.Send(bus.QoSProcessed, "peer", nil); err != nil {
		t.Fatalf("secondary did not share its primary's copied rules: %v", err)
	}
	if err := b.ForceDisconnect("app"); err != nil {
		t.Fatal(err)
	}
	app = mustRegister(t, b, "app")
	if err := app.Send(bus.QoSProcessed, "peer", nil); !errors.Is(err, bus.ErrAccessDenied) {
		t.Fatalf("re-registered client: Send %v, want ErrAccessDenied", err)
	}
	if err := app.Publish(bus.QoSProcessed, "t", nil); !errors.Is(err, bus.ErrAccessDenied) {
		t.Fatalf("re-registered client: Publish %v, want ErrAccessDenied", err)
	}
	// Deleting the name keeps connected clients, refuses new ones.
	m.Delete("peer")
	if err := app.Unsubscribe(bus.QoSProcessed, "x"); err != nil {
		t.Fatal(err)
	}
	if err := b.ForceDisconnect("peer"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RegisterClient("peer"); !errors.Is(err, bus.ErrAccessDenied) {
		t.Fatalf("deleted name registered: %v", err)
	}
}

// TestSecondaryHostChecked: a secondary shares its primary's access rules (WIRE.md §6),
// and those include the hosts it may connect from: a secondary connecting from an address its
// primary's policy does not allow is refused with 79 (WIRE.md §2: "refused by access control
// (name not in the AAA map, or peer address not allowed)").
func TestSecondaryHostChecked(t *testing.T) {
	m := policyMap(t, map[string]aaa.Policy{"app": {Hosts: []string{"10.0.0.0/8"}}})
	b := newBroker(t, bus.WithPolicy(m))
	mustRegister(t, b, "app", tcpFrom("10.0.0.1:5000"))
	if _, err := b.RegisterClient("app%%ok", tcpFrom("10.9.9.9:1")); err != nil {
		t.Fatalf("secondary from an allowed host: %v", err)
	}
	_, err := b.RegisterClient("app%%evil", tcpFrom("192.168.1.1:5000"))
	if !errors.Is(err, bus.ErrAccessDenied) {
		t.Fatalf("secondary from 192.168.1.1, its primary's policy allowing 10.0.0.0/8 only: err %v; want ErrAccessDenied", err)
	}
}
