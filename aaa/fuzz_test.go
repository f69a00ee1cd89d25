package aaa

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		exampleFile,
		`{}`,
		`{"a": {}}`,
		`{"a": {"hosts": ["::ffff:10.0.0.0/104", "0.0.0.0/0", "::/0", "fe80::1"]}}`,
		`{"a": {"p2p": [], "deny_publish": true, "subscribe": ["#"], "broadcast": ["*", "?.x"]}}`,
		`{"a": {"broker": ["client.list", "rtbus.*"], "deny_broker": true}}`,
		`{"a": {"hosts": ["10.0.0.0/33"]}}`,
		`{"a": {"p2p": null}}`,
		`{"a": {"x": 1}}`,
		`{"a": {}} x`,
		`{"a": {}, "a": {}}`,
		`{"a%%1": {}}`,
		`[`,
		``,
		`null`,
	} {
		f.Add([]byte(s))
	}
	inputs := []string{"", "a", "a%%b", "%%", "a/b", "#", "+", "*", "?", "a.b.c", "news/#", "x%%y%%z", "\xff", "/", "."}
	addrs := []netip.Addr{
		{},
		netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("10.1.2.3"),
		netip.MustParseAddr("::1"),
		netip.MustParseAddr("::ffff:10.1.2.3"),
		netip.MustParseAddr("fe80::1%eth0"),
		netip.MustParseAddr("255.255.255.255"),
		netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(strings.NewReader(string(data)))
		if err != nil {
			if m != nil {
				t.Fatal("Map returned with an error")
			}
			if !strings.HasPrefix(err.Error(), "aaa: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		for _, n := range m.Names() {
			if checkName(n) != nil {
				t.Fatalf("loaded bad name %q", n)
			}
			r, ok := m.Get(n)
			if !ok || r == nil {
				t.Fatalf("Get(%q) = %v, %v", n, r, ok)
			}
			for _, a := range addrs {
				r.AllowHost(a)
			}
			for _, s := range inputs {
				r.AllowP2P(s)
				r.AllowPublish(s)
				r.AllowSubscribe(s)
				r.AllowBroadcast(s)
				r.AllowBroker(s)
			}
			// What was loaded compiles again to the same answers.
			p := r.Policy()
			r2, err := Compile(p)
			if err != nil {
				t.Fatalf("Compile(Policy()) of %q: %v", n, err)
			}
			if !reflect.DeepEqual(r2.Policy(), p) {
				t.Fatalf("Policy round trip of %q: %#v != %#v", n, r2.Policy(), p)
			}
			for _, a := range addrs {
				if r.AllowHost(a) != r2.AllowHost(a) {
					t.Fatalf("%q: AllowHost(%v) differs after recompiling", n, a)
				}
			}
			for _, s := range append(inputs, p.P2P.Allow...) {
				if r.AllowP2P(s) != r2.AllowP2P(s) {
					t.Fatalf("%q: AllowP2P(%q) differs after recompiling", n, s)
				}
			}
		}
	})
}
