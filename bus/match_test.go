package bus_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/internal/match"
)

// topicCase: a client subscribed to patterns receives a publication on topic (once) or not.
type topicCase struct {
	patterns []string
	topic    string
	want     bool
}

var topicCases = []topicCase{
	// Exact topics: no normalisation, an empty level is a level.
	{[]string{"a"}, "a", true},
	{[]string{"a"}, "b", false},
	{[]string{"a"}, "/a", false},
	{[]string{"/a"}, "a", false},
	{[]string{"/a"}, "/a", true},
	{[]string{"a"}, "a/", false},
	{[]string{"a/"}, "a", false},
	{[]string{"a/"}, "a/", true},
	{[]string{"a//b"}, "a/b", false},
	{[]string{"a/b"}, "a//b", false},
	{[]string{"a//b"}, "a//b", true},
	{[]string{"a/b"}, "a/b/c", false},
	{[]string{"a/b/c"}, "a/b", false},
	{[]string{""}, "", true},
	{[]string{""}, "/", false},
	{[]string{"A"}, "a", false},
	{[]string{"ü/ß"}, "ü/ß", true},

	// "+": exactly one level, any value, also empty.
	{[]string{"+"}, "", true},
	{[]string{"+"}, "a", true},
	{[]string{"+"}, "/", false},
	{[]string{"+"}, "a/b", false},
	{[]string{"+/+"}, "/", true},
	{[]string{"+/+"}, "a/b", true},
	{[]string{"+/+"}, "a", false},
	{[]string{"a/+"}, "a/", true},
	{[]string{"a/+"}, "a/x", true},
	{[]string{"a/+"}, "a", false},
	{[]string{"a/+"}, "a/x/y", false},
	{[]string{"a/+/c"}, "a//c", true},
	{[]string{"a/+/c"}, "a/b/c", true},
	{[]string{"a/+/c"}, "a/b/d", false},
	{[]string{"+/b"}, "a/b", true},
	{[]string{"+/b"}, "/b", true},
	{[]string{"a+"}, "ab", false},
	{[]string{"a+"}, "a+", true},
	{[]string{"+a"}, "ba", false},

	// "#": the levels before it match and at least one more level follows.
	{[]string{"a/#"}, "a/x", true},
	{[]string{"a/#"}, "a/x/y", true},
	{[]string{"a/#"}, "a/", true},
	{[]string{"a/#"}, "a//", true},
	{[]string{"a/#"}, "a", false},
	{[]string{"a/#"}, "b/x", false},
	{[]string{"a/#"}, "ab/x", false},
	{[]string{"a/#"}, "/a/x", false},
	{[]string{"#"}, "", true},
	{[]string{"#"}, "a", true},
	{[]string{"#"}, "/", true},
	{[]string{"#"}, "a/b/c", true},
	{[]string{"#"}, ".broker/info", true},
	{[]string{"+/#"}, "a", false},
	{[]string{"+/#"}, "a/b", true},
	{[]string{"+/#"}, "/", true},
	{[]string{"+/b/#"}, "a/b/c/d", true},
	{[]string{"+/b/#"}, "a/c/d", false},
	{[]string{"a#"}, "a/b", false},
	{[]string{"a#"}, "a#", true},
	{[]string{"#a"}, "b", false},

	// Nothing after "#" matters.
	{[]string{"a/#/b"}, "a/x", true},
	{[]string{"a/#/b"}, "a/x/y/z", true},
	{[]string{"a/#/b"}, "a/b", true},
	{[]string{"a/#/b"}, "a", false},
	{[]string{"#/x"}, "y", true},
	{[]string{"a/#/+/#"}, "a/q", true},

	// Wildcards inside a published topic are literal.
	{[]string{"a/x"}, "a/+", false},
	{[]string{"a/x"}, "a/#", false},
	{[]string{"a"}, "#", false},
	{[]string{"a"}, "+", false},
	{[]string{"a/+"}, "a/+", true},
	{[]string{"a/#"}, "a/#", true},
	{[]string{"a/b"}, "+/b", false},
	{[]string{"+"}, "#", true},

	// Several subscriptions that match give one delivery.
	{[]string{"a/b", "a/+", "a/#", "+/+", "+/#", "#"}, "a/b", true},
	{[]string{"a/#", "a/#/x", "a/#/y"}, "a/b", true},
	{[]string{"x/#", "a/+"}, "a/b", true},
	{[]string{"x/#", "y/+"}, "a/b", false},
}

func TestTopicMatching(t *testing.T) {
	for _, tc := range topicCases {
		t.Run(fmt.Sprintf("%q<-%q", strings.Join(tc.patterns, ","), tc.topic), func(t *testing.T) {
			b := newBroker(t)
			sub := mustRegister(t, b, "sub")
			pub := mustRegister(t, b, "pub")
			if err := sub.Subscribe(bus.QoSProcessed, tc.patterns...); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			payload := []byte("p:" + tc.topic)
			if err := pub.Publish(bus.QoSProcessed, tc.topic, payload); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			got := upTo(t, pub, sub)
			switch {
			case tc.want && len(got) != 1:
				t.Fatalf("subscribed to %q, publication on %q: got %d frames %v, want exactly 1",
					tc.patterns, tc.topic, len(got), fmtFrames(got))
			case !tc.want && len(got) != 0:
				t.Fatalf("subscribed to %q, publication on %q: got %v, want nothing",
					tc.patterns, tc.topic, fmtFrames(got))
			}
			if tc.want {
				f := got[0]
				if f.Kind != bus.KindPublish || f.Topic != tc.topic || f.Sender != "pub" || string(f.Payload) != string(payload) {
					t.Fatalf("frame %s, want a publication on %q from pub", fmtFrame(f), tc.topic)
				}
			}
		})
	}
}

// TestTopicMatchingSharedTrie puts every case's subscriber on one broker at once, so that the
// subscriptions share trie nodes, and checks each publication reaches exactly the right ones.
func TestTopicMatchingSharedTrie(t *testing.T) {
	b := newBroker(t)
	pub := mustRegister(t, b, "pub")
	subs := make([]*bus.Client, len(topicCases))
	for i := range topicCases {
		subs[i] = mustRegister(t, b, fmt.Sprintf("sub.%d", i))
	}
	// Subscribe only once everyone is registered, so that no "reg" announcement on
	// .broker/info reaches a "#" subscriber.
	for i, tc := range topicCases {
		if err := subs[i].Unsubscribe(bus.QoSProcessed, bus.TopicWarn); err != nil {
			t.Fatal(err)
		}
		if err := subs[i].Subscribe(bus.QoSProcessed, tc.patterns...); err != nil {
			t.Fatal(err)
		}
	}
	topics := map[string]bool{}
	for _, tc := range topicCases {
		topics[tc.topic] = true
	}
	for topic := range topics {
		if err := pub.Publish(bus.QoSProcessed, topic, []byte(topic)); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range topicCases {
		got := upTo(t, pub, subs[i])
		var gotTopic []string
		for _, f := range got {
			gotTopic = append(gotTopic, f.Topic)
		}
		// Every topic of the table, published once, reaches this subscriber once if any
		// of its patterns matches it.
		n := slices.Index(gotTopic, tc.topic)
		if tc.want && n < 0 {
			t.Errorf("sub.%d %q: publication on %q not received (got %q)", i, tc.patterns, tc.topic, gotTopic)
		}
		if !tc.want && n >= 0 {
			t.Errorf("sub.%d %q: publication on %q received", i, tc.patterns, tc.topic)
		}
		seen := map[string]bool{}
		for _, tp := range gotTopic {
			if seen[tp] {
				t.Errorf("sub.%d %q: publication on %q received twice", i, tc.patterns, tp)
			}
			seen[tp] = true
		}
	}
}

func TestPublisherReceivesOwnPublication(t *testing.T) {
	b := newBroker(t)
	c := mustRegister(t, b, "self")
	if err := c.Subscribe(bus.QoSProcessed, "t/+"); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(bus.QoSProcessed, "t/1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f := expectOne(t, c, c)
	if f.Sender != "self" || f.Topic != "t/1" {
		t.Fatalf("got %s", fmtFrame(f))
	}
	// Not subscribed: no delivery to itself.
	if err := c.Publish(bus.QoSProcessed, "u/1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, c, c)
}

func TestPublishReachesEverySubscriberOnce(t *testing.T) {
	b := newBroker(t)
	pub := mustRegister(t, b, "pub")
	patterns := [][]string{{"n/#"}, {"n/+"}, {"n/x", "#"}, {"+/x", "n/+", "n/#"}}
	var subs []*bus.Client
	for i := range patterns {
		subs = append(subs, mustRegister(t, b, fmt.Sprintf("s%d", i)))
	}
	other := mustRegister(t, b, "other")
	for i, c := range subs {
		if err := c.Subscribe(bus.QoSProcessed, patterns[i]...); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Subscribe(bus.QoSProcessed, "m/#"); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(bus.QoSProcessed, "n/x", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for _, c := range subs {
		f := expectOne(t, pub, c)
		if f.Topic != "n/x" || string(f.Payload) != "hello" {
			t.Errorf("%s got %s", c.Name(), fmtFrame(f))
		}
	}
	expectNothing(t, pub, other)
}

func TestSubscribeTwiceIsOneSubscription(t *testing.T) {
	b := newBroker(t)
	sub := mustRegister(t, b, "sub")
	pub := mustRegister(t, b, "pub")
	for range 3 {
		if err := sub.Subscribe(bus.QoSProcessed, "a/b", "a/b"); err != nil {
			t.Fatal(err)
		}
	}
	pub.Publish(bus.QoSNo, "a/b", nil)
	expectOne(t, pub, sub)
	// One Unsubscribe removes it.
	if err := sub.Unsubscribe(bus.QoSProcessed, "a/b"); err != nil {
		t.Fatal(err)
	}
	pub.Publish(bus.QoSNo, "a/b", nil)
	expectNothing(t, pub, sub)
}

func TestUnsubscribe(t *testing.T) {
	b := newBroker(t)
	sub := mustRegister(t, b, "sub")
	pub := mustRegister(t, b, "pub")
	if err := sub.Subscribe(bus.QoSProcessed, "a/+", "a/#/x", "b", "+"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		unsub  []string
		topic  string
		expect bool
	}{
		{nil, "a/b", true},
		{[]string{"a/+"}, "a/b", true}, // still "a/#"
		{[]string{"not/subscribed", "a/+"}, "a/b/c", true},
		{[]string{"a/#"}, "a/b", false}, // "a/#" is the same subscription as "a/#/x"
		{nil, "b", true},
		{[]string{"b"}, "b", true}, // still "+"
		{[]string{"+"}, "b", false},
		{nil, "c", false},
	}
	for i, s := range steps {
		if s.unsub != nil {
			if err := sub.Unsubscribe(bus.QoSProcessed, s.unsub...); err != nil {
				t.Fatalf("step %d: Unsubscribe: %v", i, err)
			}
		}
		if err := pub.Publish(bus.QoSProcessed, s.topic, nil); err != nil {
			t.Fatal(err)
		}
		got := upTo(t, pub, sub)
		if s.expect != (len(got) == 1) || len(got) > 1 {
			t.Fatalf("step %d: after unsubscribing %q, publication on %q: got %d frames, want delivered=%v",
				i, s.unsub, s.topic, len(got), s.expect)
		}
	}
	// Re-subscribing after everything was removed works (pruned trie nodes are rebuilt).
	if err := sub.Subscribe(bus.QoSProcessed, "a/#"); err != nil {
		t.Fatal(err)
	}
	pub.Publish(bus.QoSProcessed, "a/b", nil)
	expectOne(t, pub, sub)
}

// TestUnsubscribeKeepsOthers: removing one client's subscription leaves another client's
// identical subscription in place.
func TestUnsubscribeKeepsOthers(t *testing.T) {
	b := newBroker(t)
	s1 := mustRegister(t, b, "s1")
	s2 := mustRegister(t, b, "s2")
	pub := mustRegister(t, b, "pub")
	for _, c := range []*bus.Client{s1, s2} {
		if err := c.Subscribe(bus.QoSProcessed, "x/+/y", "z/#"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Unsubscribe(bus.QoSProcessed, "x/+/y", "z/#"); err != nil {
		t.Fatal(err)
	}
	pub.Publish(bus.QoSProcessed, "x/1/y", nil)
	pub.Publish(bus.QoSProcessed, "z/1", nil)
	expectNothing(t, pub, s1)
	if got := upTo(t, pub, s2); len(got) != 2 {
		t.Fatalf("s2 got %v, want 2 publications", fmtFrames(got))
	}
	// A closed client's subscriptions go with it.
	s2.Close()
	pub.Publish(bus.QoSProcessed, "z/1", nil)
	s3 := mustRegister(t, b, "s3")
	if err := s3.Subscribe(bus.QoSProcessed, "z/#"); err != nil {
		t.Fatal(err)
	}
	pub.Publish(bus.QoSProcessed, "z/2", nil)
	f := expectOne(t, pub, s3)
	if f.Topic != "z/2" {
		t.Fatalf("s3 got %s", fmtFrame(f))
	}
}

func TestExclusions(t *testing.T) {
	cases := []struct {
		subs, excl []string
		topic      string
		want       bool
	}{
		{[]string{"#"}, []string{"a/+"}, "a/b", false},
		{[]string{"#"}, []string{"a/+"}, "a/b/c", true},
		{[]string{"#"}, []string{"a/#"}, "a/b/c", false},
		{[]string{"#"}, []string{"a/#"}, "a", true},
		{[]string{"a/b"}, []string{"a/b"}, "a/b", false},
		{[]string{"a/b"}, []string{"#"}, "a/b", false},
		{[]string{"a/b", "a/+", "#"}, []string{"+/b"}, "a/b", false},
		{[]string{"a/b", "a/+", "#"}, []string{"+/c"}, "a/b", true},
		{[]string{"a/b"}, []string{"a/#/zzz"}, "a/b", false},
		{[]string{"a/b"}, []string{"a/+/c"}, "a/b", true},
		{nil, []string{"x"}, "x", false},
		{[]string{"x"}, []string{"x/#"}, "x", true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("sub%q-excl%q<-%q", tc.subs, tc.excl, tc.topic), func(t *testing.T) {
			b := newBroker(t)
			sub := mustRegister(t, b, "sub")
			other := mustRegister(t, b, "other")
			pub := mustRegister(t, b, "pub")
			if len(tc.subs) > 0 {
				if err := sub.Subscribe(bus.QoSProcessed, tc.subs...); err != nil {
					t.Fatal(err)
				}
			}
			if err := other.Subscribe(bus.QoSProcessed, "#"); err != nil {
				t.Fatal(err)
			}
			if err := sub.Exclude(bus.QoSProcessed, tc.excl...); err != nil {
				t.Fatal(err)
			}
			pub.Publish(bus.QoSProcessed, tc.topic, nil)
			if got := upTo(t, pub, sub); tc.want != (len(got) == 1) || len(got) > 1 {
				t.Fatalf("got %d frames, want delivered=%v", len(got), tc.want)
			}
			// Another client's exclusions do not affect "other".
			expectOne(t, pub, other)
			// Unexclude restores delivery wherever a subscription matches.
			if err := sub.Unexclude(bus.QoSProcessed, tc.excl...); err != nil {
				t.Fatal(err)
			}
			pub.Publish(bus.QoSProcessed, tc.topic, nil)
			subscribed := slices.ContainsFunc(tc.subs, func(p string) bool { return match.Topic(p, tc.topic) })
			if got := upTo(t, pub, sub); subscribed != (len(got) == 1) || len(got) > 1 {
				t.Fatalf("after Unexclude: got %d frames, want delivered=%v", len(got), subscribed)
			}
			expectOne(t, pub, other)
		})
	}
}

func TestExcludeCanonicalForm(t *testing.T) {
	b := newBroker(t)
	sub := mustRegister(t, b, "sub")
	pub := mustRegister(t, b, "pub")
	if err := sub.Subscribe(bus.QoSProcessed, "#"); err != nil {
		t.Fatal(err)
	}
	if err := sub.Exclude(bus.QoSProcessed, "a/#/zzz", "a/#"); err != nil {
		t.Fatal(err)
	}
	pub.Publish(bus.QoSProcessed, "a/b", nil)
	expectNothing(t, pub, sub)
	// "a/#" and "a/#/zzz" are one exclusion: removing either removes it.
	if err := sub.Unexclude(bus.QoSProcessed, "a/#/other"); err != nil {
		t.Fatal(err)
	}
	pub.Publish(bus.QoSProcessed, "a/b", nil)
	expectOne(t, pub, sub)
	// Unexcluding something never excluded is ignored.
	if err := sub.Unexclude(bus.QoSProcessed, "never", "a/#"); err != nil {
		t.Fatal(err)
	}
	pub.Publish(bus.QoSProcessed, "a/b", nil)
	expectOne(t, pub, sub)
}

func TestPublishFor(t *testing.T) {
	b := newBroker(t)
	pub := mustRegister(t, b, "pub")
	names := []string{"app", "app%%1", "app%%2", "apple", "app.x", "other", "other%%app"}
	clients := map[string]*bus.Client{}
	for _, n := range names {
		clients[n] = mustRegister(t, b, n)
	}
	for _, n := range names {
		if n == "app%%2" {
			continue // not subscribed
		}
		if err := clients[n].Subscribe(bus.QoSProcessed, "t/+"); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Subscribe(bus.QoSProcessed, "t/#"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		topic, receiver string
		want            []string
	}{
		{"t/1", "app", []string{"app", "app%%1"}},
		{"t/1", "other", []string{"other", "other%%app"}},
		{"t/1", "pub", []string{"pub"}},
		{"t/1", "nobody", nil},
		{"t/1", "app%%1", nil}, // a primary name is expected; no primary is called "app%%1"
		{"t/1", "ap", nil},
		{"u/1", "app", nil}, // the topic must still match
		{"t/1/2", "app", nil},
	}
	all := append(slices.Clone(names), "pub")
	for _, tc := range cases {
		if err := pub.PublishFor(bus.QoSProcessed, tc.topic, tc.receiver, []byte("pf")); err != nil {
			t.Fatalf("PublishFor(%q, %q): %v", tc.topic, tc.receiver, err)
		}
		for _, n := range all {
			rx := pub
			if n != "pub" {
				rx = clients[n]
			}
			got := upTo(t, pub, rx)
			want := slices.Contains(tc.want, n)
			if want != (len(got) == 1) || len(got) > 1 {
				t.Errorf("PublishFor(%q, receiver %q): %s got %d frames, want delivered=%v",
					tc.topic, tc.receiver, n, len(got), want)
				continue
			}
			if want && (got[0].Kind != bus.KindPublish || got[0].Topic != tc.topic || got[0].Sender != "pub") {
				t.Errorf("%s got %s", n, fmtFrame(got[0]))
			}
		}
	}
}

// TestPublishForEmptyReceiver: publish-for delivers "only to subscribers whose primary name is
// receiver" (WIRE.md §3); no client has the empty name, so an empty receiver reaches nobody. It
// must not turn into a plain publication.
func TestPublishForEmptyReceiver(t *testing.T) {
	b := newBroker(t)
	pub := mustRegister(t, b, "pub")
	rx := mustRegister(t, b, "rx")
	if err := rx.Subscribe(bus.QoSProcessed, "t/+"); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishFor(bus.QoSProcessed, "t/1", "", []byte("for nobody")); err != nil {
		t.Fatalf("PublishFor: %v", err)
	}
	expectNothing(t, pub, rx)
}

func TestPublishForRespectsExclusions(t *testing.T) {
	b := newBroker(t)
	pub := mustRegister(t, b, "pub")
	rx := mustRegister(t, b, "rx")
	if err := rx.Subscribe(bus.QoSProcessed, "a/+", "a/#"); err != nil {
		t.Fatal(err)
	}
	pub.PublishFor(bus.QoSProcessed, "a/b", "rx", nil)
	expectOne(t, pub, rx) // once, though two subscriptions match
	if err := rx.Exclude(bus.QoSProcessed, "a/b"); err != nil {
		t.Fatal(err)
	}
	pub.PublishFor(bus.QoSProcessed, "a/b", "rx", nil)
	expectNothing(t, pub, rx)
}

type maskCase struct {
	mask string
	want []string
}

// broadcastNames are the clients registered for the broadcast tests, besides the sender "tx"
// and the broker's own ".broker".
var broadcastNames = []string{
	"a", "a.b", "a.b.c", "a.c", "a.b%%1", "a%%1", "b.b", "x..y", "worker.1", "worker.2", "worker.2%%s", "workers.1",
}

var maskCases = []maskCase{
	{"a", []string{"a"}},
	{"a.b", []string{"a.b"}},
	{"a.b%%1", []string{"a.b%%1"}},
	{"a%%1", []string{"a%%1"}},
	{"a.b.c", []string{"a.b.c"}},
	{"nobody", nil},
	{"a.?", []string{"a.b", "a.c", "a.b%%1"}},
	{"?.b", []string{"a.b", "b.b"}},
	{"?", []string{"a", "a%%1", "tx"}},
	{"?.?.?", []string{"a.b.c", "x..y"}},
	{"x.?.y", []string{"x..y"}},
	{"a.*", []string{"a.b", "a.b.c", "a.c", "a.b%%1"}},
	{"a.b.*", []string{"a.b.c"}},
	{"a.c.*", nil},
	{"*", []string{"a", "a.b", "a.b.c", "a.c", "a.b%%1", "a%%1", "b.b", "x..y", "worker.1", "worker.2", "worker.2%%s", "workers.1", "tx", ".broker"}},
	{"worker.*", []string{"worker.1", "worker.2", "worker.2%%s"}},
	{"worker.*.ignored", []string{"worker.1", "worker.2", "worker.2%%s"}},
	{"?.*", []string{"a.b", "a.b.c", "a.c", "a.b%%1", "b.b", "x..y", "worker.1", "worker.2", "worker.2%%s", "workers.1", ".broker"}},
	{"worker.2", []string{"worker.2"}}, // not its secondary
	{"worker", nil},
	{"tx", []string{"tx"}},
	{"a.b%%?", nil}, // "?" is a whole level, not a suffix wildcard
	{"a.*b", nil},
	{"", nil},
}

func TestBroadcastMasks(t *testing.T) {
	b := newBroker(t)
	tx := mustRegister(t, b, "tx")
	clients := map[string]*bus.Client{"tx": tx}
	for _, n := range broadcastNames {
		clients[n] = mustRegister(t, b, n)
	}
	for _, tc := range maskCases {
		payload := []byte("to " + tc.mask)
		for _, q := range allQoS {
			if err := tx.Broadcast(q, tc.mask, payload); err != nil {
				t.Fatalf("Broadcast(%s, %q): %v", qosName(q), tc.mask, err)
			}
		}
		for n, c := range clients {
			got := upTo(t, tx, c)
			want := 0
			if slices.Contains(tc.want, n) {
				want = len(allQoS)
			}
			if len(got) != want {
				t.Errorf("mask %q: %s got %d frames, want %d", tc.mask, n, len(got), want)
				continue
			}
			for i, f := range got {
				if f.Kind != bus.KindBroadcast || f.Sender != "tx" || f.Topic != "" || string(f.Payload) != string(payload) ||
					f.Realtime != allQoS[i].Realtime() {
					t.Errorf("mask %q: %s got %s", tc.mask, n, fmtFrame(f))
				}
			}
		}
	}
}

// TestBroadcastFromSecondary: the sender's full name is what matches the mask, and what the
// receivers see.
func TestBroadcastFromSecondary(t *testing.T) {
	b := newBroker(t)
	mustRegister(t, b, "w")
	tx := mustRegister(t, b, "w%%tx")
	rx := mustRegister(t, b, "rx")
	if err := tx.Broadcast(bus.QoSProcessed, "w%%tx", []byte("me")); err != nil {
		t.Fatal(err)
	}
	f := expectOne(t, rx, tx)
	if f.Sender != "w%%tx" || f.PrimarySender() != "w" {
		t.Fatalf("got %s", fmtFrame(f))
	}
	expectNothing(t, tx, rx)
	if err := tx.Broadcast(bus.QoSProcessed, "*", []byte("all")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*bus.Client{tx, rx} {
		f := expectOne(t, rx, c)
		if f.Sender != "w%%tx" || f.PrimarySender() != "w" || string(f.Payload) != "all" {
			t.Fatalf("%s got %s", c.Name(), fmtFrame(f))
		}
	}
}

// TestBroadcastAfterUnregister: a departed name is no longer reached, and its trie branch
// does not hide names that share a prefix with it.
func TestBroadcastAfterUnregister(t *testing.T) {
	b := newBroker(t)
	tx := mustRegister(t, b, "tx")
	ab := mustRegister(t, b, "a.b")
	abc := mustRegister(t, b, "a.b.c")
	ab.Close()
	if err := tx.Broadcast(bus.QoSProcessed, "a.*", nil); err != nil {
		t.Fatal(err)
	}
	expectOne(t, tx, abc)
	abc.Close()
	ab2 := mustRegister(t, b, "a.b")
	if err := tx.Broadcast(bus.QoSProcessed, "a.?", nil); err != nil {
		t.Fatal(err)
	}
	expectOne(t, tx, ab2)
	if err := tx.Broadcast(bus.QoSProcessed, "a.b.*", nil); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, tx, ab2)
}
