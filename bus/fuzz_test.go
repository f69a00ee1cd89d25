package bus_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/internal/match"
)

func validText(s string) bool { return utf8.ValidString(s) && !strings.Contains(s, "\x00") }

// FuzzTopicMatch checks the subscription trie against the reference rule match.Topic: a
// client subscribed to pattern receives a publication on topic exactly when match.Topic says
// so, once; a client subscribed to everything and excluding pattern receives it exactly when
// match.Topic says no; and after unsubscribing, nothing arrives.
func FuzzTopicMatch(f *testing.F) {
	for _, tc := range topicCases {
		f.Add(tc.patterns[0], tc.topic)
	}
	for _, s := range [][2]string{
		{"#", ""}, {"+", ""}, {"", ""}, {"/", "/"}, {"+/+/+", "//"}, {"#/#", "a"}, {"a/#/#", "a/b"},
		{"+/#", "+/#"}, {"a/+/#", "a/b"}, {"a/+/#", "a/b/c"}, {"a//#", "a//b"}, {"ü/+", "ü/ÿ"},
		{bus.TopicWarn, bus.TopicWarn}, {".broker/+", bus.TopicInfo},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		if !validText(pattern) || !validText(topic) {
			t.Skip()
		}
		want := match.Topic(pattern, topic)
		b := newBroker(t)
		sub := mustRegister(t, b, "sub")
		ex := mustRegister(t, b, "ex")
		pub := mustRegister(t, b, "pub")
		// Clear the automatic .broker/warn subscription so that it cannot match.
		for _, c := range []*bus.Client{sub, ex} {
			if err := c.Unsubscribe(bus.QoSProcessed, bus.TopicWarn); err != nil {
				t.Fatal(err)
			}
		}
		if err := sub.Subscribe(bus.QoSProcessed, pattern); err != nil {
			t.Fatalf("Subscribe(%q): %v", pattern, err)
		}
		if err := ex.Subscribe(bus.QoSProcessed, "#"); err != nil {
			t.Fatal(err)
		}
		if err := ex.Exclude(bus.QoSProcessed, pattern); err != nil {
			t.Fatalf("Exclude(%q): %v", pattern, err)
		}
		if err := pub.Publish(bus.QoSProcessed, topic, []byte("x")); err != nil {
			t.Fatalf("Publish(%q): %v", topic, err)
		}
		if got := upTo(t, pub, sub); len(got) > 1 || (len(got) == 1) != want {
			t.Fatalf("subscription %q, topic %q: %d deliveries, match.Topic says %v", pattern, topic, len(got), want)
		}
		if got := upTo(t, pub, ex); len(got) > 1 || (len(got) == 1) == want {
			t.Fatalf("exclusion %q, topic %q: %d deliveries, match.Topic says %v", pattern, topic, len(got), want)
		}
		if err := sub.Unsubscribe(bus.QoSProcessed, pattern); err != nil {
			t.Fatal(err)
		}
		if err := ex.Unexclude(bus.QoSProcessed, pattern); err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(bus.QoSProcessed, topic, []byte("y")); err != nil {
			t.Fatal(err)
		}
		if got := upTo(t, pub, sub); len(got) != 0 {
			t.Fatalf("unsubscribed from %q, topic %q: still delivered", pattern, topic)
		}
		if got := upTo(t, pub, ex); len(got) != 1 {
			t.Fatalf("unexcluded %q, topic %q: %d deliveries, want 1", pattern, topic, len(got))
		}
	})
}

// FuzzNameMatch checks broadcast routing against the reference rule match.Name: the client
// named name receives a broadcast to mask exactly when match.Name says so, and so does the
// sender.
func FuzzNameMatch(f *testing.F) {
	for _, tc := range maskCases {
		for _, n := range append([]string{"tx", "other.name"}, broadcastNames...) {
			f.Add(tc.mask, n)
		}
	}
	for _, s := range [][2]string{
		{"*", ".x"}, {"?", "%%"}, {"?.?", "a%%b.c"}, {"*", "a%%b"}, {"a.*", "a.%%x"}, {"..", ".."},
		{"?.*.?", "a.b.c"}, {"?", "ü"}, {"*.b", "a.b"}, {"", "x%%"},
	} {
		f.Add(s[0], s[1])
	}
	const sender = "fuzz-sender"
	f.Fuzz(func(t *testing.T, mask, name string) {
		if !validText(mask) || !validText(name) || name == "" || name == sender || name == bus.BrokerName {
			t.Skip()
		}
		b := newBroker(t)
		tx := mustRegister(t, b, sender)
		if primary := bus.PrimaryName(name); primary != name {
			if primary == "" {
				t.Skip() // no primary can be registered
			}
			if primary != sender && primary != bus.BrokerName {
				mustRegister(t, b, primary)
			}
		}
		rx := mustRegister(t, b, name)
		if err := tx.Broadcast(bus.QoSProcessed, mask, []byte("x")); err != nil {
			t.Fatalf("Broadcast(%q): %v", mask, err)
		}
		want := match.Name(mask, name)
		if got := upTo(t, tx, rx); len(got) > 1 || (len(got) == 1) != want {
			t.Fatalf("mask %q, client %q: %d deliveries, match.Name says %v", mask, name, len(got), want)
		}
		want = match.Name(mask, sender)
		if got := upTo(t, tx, tx); len(got) > 1 || (len(got) == 1) != want {
			t.Fatalf("mask %q, sender %q: %d deliveries, match.Name says %v", mask, sender, len(got), want)
		}
	})
}
