package aaa

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

func mustCompile(t *testing.T, p Policy) *Rules {
	t.Helper()
	r, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", p, err)
	}
	return r
}

func allow(s ...string) Rule { return Rule{Allow: s} }

func TestRules(t *testing.T) {
	type check struct {
		in   string
		want bool
	}
	tests := []struct {
		name   string
		policy Policy
		method func(*Rules, string) bool
		checks []check
	}{
		{
			name:   "p2p zero rule allows all",
			method: (*Rules).AllowP2P,
			checks: []check{{"test", true}, {"", true}, {"a.b%%c", true}},
		},
		{
			name:   "p2p exact",
			policy: Policy{P2P: allow("test")},
			method: (*Rules).AllowP2P,
			checks: []check{
				{"test", true},
				{"test%%1", true}, // secondary of an allowed primary
				{"test%%x%%y", true},
				{"test2", false},
				{"tes", false},
				{"test.a", false},
				{"other%%test", false},
				{"", false},
			},
		},
		{
			name:   "p2p secondary only",
			policy: Policy{P2P: allow("test%%1")},
			method: (*Rules).AllowP2P,
			checks: []check{{"test%%1", true}, {"test", false}, {"test%%2", false}},
		},
		{
			name:   "p2p masks",
			policy: Policy{P2P: allow("plant.?.sensor", "svc.*")},
			method: (*Rules).AllowP2P,
			checks: []check{
				{"plant.a.sensor", true},
				{"plant.a.sensor%%2", true},
				{"plant.a.b.sensor", false},
				{"plant.sensor", false},
				{"svc.x", true},
				{"svc.x.y", true},
				{"svc", false},
				{"svc%%1", false}, // "*" needs one more level; the primary "svc" has none
			},
		},
		{
			name:   "p2p star allows everything named",
			policy: Policy{P2P: allow("*")},
			method: (*Rules).AllowP2P,
			checks: []check{{"a", true}, {"a.b.c", true}, {"x%%1", true}},
		},
		{
			name:   "publish",
			policy: Policy{Publish: allow("news/#", "unit/+/status", "exact")},
			method: (*Rules).AllowPublish,
			checks: []check{
				{"news/a", true},
				{"news/a/b", true},
				{"news", false}, // "#" wants at least one more level
				{"newsx/a", false},
				{"unit/1/status", true},
				{"unit/1/2/status", false},
				{"unit//status", true}, // "+" matches an empty level
				{"exact", true},
				{"exact/x", false},
				{"other", false},
			},
		},
		{
			name:   "subscribe is literal",
			policy: Policy{Subscribe: allow("news/#", "unit/a/status")},
			method: (*Rules).AllowSubscribe,
			checks: []check{
				{"news/#", true},
				{"news/+/x", true},
				{"news/a", true},
				{"news/+", true},
				{"news", false},
				{"#", false},
				{"+/a", false},
				{"unit/a/status", true},
				{"unit/+/status", false}, // would reach other units
				{"unit/#", false},
			},
		},
		{
			name:   "subscribe plus pattern",
			policy: Policy{Subscribe: allow("unit/+/status")},
			method: (*Rules).AllowSubscribe,
			checks: []check{{"unit/+/status", true}, {"unit/x/status", true}, {"unit/#", false}},
		},
		{
			name:   "broadcast is literal",
			policy: Policy{Broadcast: allow("test.*", "one")},
			method: (*Rules).AllowBroadcast,
			checks: []check{
				{"test.?", true},
				{"test.a.*", true},
				{"test.a", true},
				{"test", false},
				{"*", false},
				{"?", false},
				{"one", true},
				{"one.x", false},
			},
		},
		{
			name:   "deny switch with empty allow denies all",
			policy: Policy{Publish: Rule{Deny: true}},
			method: (*Rules).AllowPublish,
			checks: []check{{"a", false}, {"", false}, {"news/a", false}},
		},
		{
			name:   "deny switch with allow is the allow list",
			policy: Policy{Publish: Rule{Allow: []string{"news/#"}, Deny: true}},
			method: (*Rules).AllowPublish,
			checks: []check{{"news/a", true}, {"sport/a", false}},
		},
		{
			name:   "empty non-nil allow without deny allows all",
			policy: Policy{Broadcast: Rule{Allow: []string{}}},
			method: (*Rules).AllowBroadcast,
			checks: []check{{"*", true}, {"a.b", true}},
		},
		{
			name:   "deny p2p",
			policy: Policy{P2P: Rule{Deny: true}},
			method: (*Rules).AllowP2P,
			checks: []check{{"test", false}, {"test%%1", false}},
		},
		{
			name:   "deny subscribe",
			policy: Policy{Subscribe: Rule{Deny: true}},
			method: (*Rules).AllowSubscribe,
			checks: []check{{"#", false}, {"a", false}},
		},
		{
			name:   "deny broadcast",
			policy: Policy{Broadcast: Rule{Deny: true}},
			method: (*Rules).AllowBroadcast,
			checks: []check{{"*", false}, {"a", false}},
		},
		{
			name:   "other rules stay open",
			policy: Policy{P2P: Rule{Deny: true}, Publish: Rule{Deny: true}, Broadcast: Rule{Deny: true}},
			method: (*Rules).AllowSubscribe,
			checks: []check{{"#", true}, {"a", true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustCompile(t, tt.policy)
			for _, c := range tt.checks {
				if got := tt.method(r, c.in); got != c.want {
					t.Errorf("%q: got %v, want %v", c.in, got, c.want)
				}
			}
		})
	}
}

func TestAllowHost(t *testing.T) {
	tests := []struct {
		name  string
		hosts []string
		addrs map[string]bool
	}{
		{
			name:  "empty admits IPv4 and IPv6",
			hosts: nil,
			addrs: map[string]bool{"10.1.2.3": true, "::1": true, "2001:db8::1": true, "::ffff:1.2.3.4": true},
		},
		{
			name:  "empty non-nil admits all",
			hosts: []string{},
			addrs: map[string]bool{"10.1.2.3": true, "::1": true},
		},
		{
			name:  "IPv4 network",
			hosts: []string{"127.0.0.0/8"},
			addrs: map[string]bool{
				"127.0.0.1":        true,
				"127.255.255.255":  true,
				"128.0.0.1":        false,
				"::1":              false,
				"::ffff:127.0.0.1": true, // mapped is the IPv4 address
				"::ffff:128.0.0.1": false,
				"::127.0.0.1":      false, // IPv4-compatible is not mapped
				"2001:db8::7f00:1": false,
				"fe80::1%eth0":     false,
			},
		},
		{
			name:  "IPv6 network and bare addresses",
			hosts: []string{"2001:db8::/32", "::1", "192.168.1.10"},
			addrs: map[string]bool{
				"2001:db8::1":          true,
				"2001:db8:ffff::1":     true,
				"2001:db9::1":          false,
				"::1":                  true,
				"::2":                  false,
				"192.168.1.10":         true,
				"192.168.1.11":         false,
				"::ffff:192.168.1.10":  true,
				"127.0.0.1":            false,
				"2001:db8::1%eth0":     true, // zones do not matter
				"::ffff:192.168.1.11":  false,
				"::ffff:c0a8:10a":      true,
				"0:0:0:0:0:0:0:1":      true,
				"2001:0db8:0000::0001": true,
			},
		},
		{
			name:  "BUS/RT default is IPv4 only",
			hosts: []string{"0.0.0.0/0"},
			addrs: map[string]bool{"1.2.3.4": true, "255.255.255.255": true, "::ffff:1.2.3.4": true, "::1": false, "2001:db8::1": false},
		},
		{
			name:  "all IPv6",
			hosts: []string{"::/0"},
			addrs: map[string]bool{"1.2.3.4": false, "::1": true, "::ffff:1.2.3.4": false},
		},
		{
			name:  "mapped prefix is the IPv4 prefix",
			hosts: []string{"::ffff:10.0.0.0/104"},
			addrs: map[string]bool{"10.9.9.9": true, "::ffff:10.9.9.9": true, "11.0.0.1": false, "::a09:909": false},
		},
		{
			name:  "mapped bare address",
			hosts: []string{"::ffff:10.0.0.1"},
			addrs: map[string]bool{"10.0.0.1": true, "10.0.0.2": false},
		},
		{
			name:  "host bits are masked",
			hosts: []string{"10.1.2.3/8"},
			addrs: map[string]bool{"10.200.0.1": true, "11.0.0.0": false},
		},
		{
			name:  "nested and overlapping",
			hosts: []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "172.16.0.0/12"},
			addrs: map[string]bool{"10.1.2.3": true, "10.2.0.0": true, "172.31.255.255": true, "172.32.0.0": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustCompile(t, Policy{Hosts: tt.hosts})
			for s, want := range tt.addrs {
				a := netip.MustParseAddr(s)
				if got := r.AllowHost(a); got != want {
					t.Errorf("AllowHost(%s) = %v, want %v", s, got, want)
				}
			}
			if !r.AllowHost(netip.Addr{}) {
				t.Error("AllowHost(zero Addr) = false; a client without an address is not checked")
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		host string
		want string
	}{
		{"10.0.0.0/33", `aaa: bad host "10.0.0.0/33": `},
		{"::1/129", `aaa: bad host "::1/129": `},
		{"300.1.1.1", `aaa: bad host "300.1.1.1": `},
		{"10.0.0.0/", `aaa: bad host "10.0.0.0/": `},
		{"/8", `aaa: bad host "/8": `},
		{"", `aaa: bad host "": `},
		{"localhost", `aaa: bad host "localhost": `},
		{" 10.0.0.1", `aaa: bad host " 10.0.0.1": `},
		{"fe80::1%eth0", `aaa: bad host "fe80::1%eth0": zones are not allowed`},
		{"fe80::%eth0/10", `aaa: bad host "fe80::%eth0/10": `},
		{"10.0.0.0/-1", `aaa: bad host "10.0.0.0/-1": `},
	}
	for _, tt := range tests {
		r, err := Compile(Policy{Hosts: []string{"127.0.0.1", tt.host}})
		if err == nil {
			t.Errorf("Compile(%q) = %v, nil; want error", tt.host, r)
			continue
		}
		if r != nil {
			t.Errorf("Compile(%q) returned Rules with an error", tt.host)
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Compile(%q) error %q, want prefix %q", tt.host, err, tt.want)
		}
		t.Logf("%v", err)
	}
}

func TestNilRules(t *testing.T) {
	var r *Rules
	if !r.AllowHost(netip.MustParseAddr("1.2.3.4")) || !r.AllowHost(netip.Addr{}) ||
		!r.AllowP2P("x") || !r.AllowPublish("x") || !r.AllowSubscribe("#") || !r.AllowBroadcast("*") {
		t.Error("nil *Rules denied something")
	}
	if p := r.Policy(); !reflect.DeepEqual(p, Policy{}) {
		t.Errorf("nil Policy() = %+v", p)
	}
}

func TestZeroPolicy(t *testing.T) {
	r := mustCompile(t, Policy{})
	for _, a := range []string{"1.2.3.4", "::1", "::ffff:1.2.3.4"} {
		if !r.AllowHost(netip.MustParseAddr(a)) {
			t.Errorf("zero Policy denied host %s", a)
		}
	}
	if !r.AllowP2P("x") || !r.AllowPublish("x") || !r.AllowSubscribe("#") || !r.AllowBroadcast("*") {
		t.Error("zero Policy denied something")
	}
}

func TestPolicyCopy(t *testing.T) {
	src := Policy{
		Hosts:     []string{"10.0.0.0/8"},
		P2P:       allow("a"),
		Publish:   allow("p/#"),
		Subscribe: allow("s/#"),
		Broadcast: Rule{Allow: []string{"b.*"}, Deny: true},
	}
	want := clonePolicy(src)
	r := mustCompile(t, src)

	// Changing the source after Compile must not reach the Rules.
	src.Hosts[0] = "0.0.0.0/0"
	src.P2P.Allow[0] = "*"
	src.Publish.Allow[0] = "#"
	src.Subscribe.Allow[0] = "#"
	src.Broadcast.Allow[0] = "*"
	if r.AllowHost(netip.MustParseAddr("1.2.3.4")) || r.AllowP2P("z") || r.AllowPublish("z") ||
		r.AllowSubscribe("z") || r.AllowBroadcast("z") {
		t.Error("changing the source Policy changed the Rules")
	}
	got := r.Policy()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Policy() = %+v, want %+v", got, want)
	}

	// Nor must changing what Policy returns.
	got.Hosts[0] = "x"
	got.P2P.Allow[0] = "x"
	got.Publish.Allow[0] = "x"
	got.Subscribe.Allow[0] = "x"
	got.Broadcast.Allow[0] = "x"
	if again := r.Policy(); !reflect.DeepEqual(again, want) {
		t.Errorf("Policy() after changing a copy = %+v, want %+v", again, want)
	}

	// Nil and empty lists survive the round trip, as Deny makes them differ.
	r = mustCompile(t, Policy{P2P: Rule{Allow: []string{}}})
	if p := r.Policy(); p.P2P.Allow == nil || p.Publish.Allow != nil {
		t.Errorf("Policy() lost nil-ness: %#v", p)
	}
}

func TestMap(t *testing.T) {
	for _, m := range []*Map{NewMap(), new(Map)} {
		if r, ok := m.Get("test"); ok || r != nil {
			t.Errorf("empty Map Get = %v, %v", r, ok)
		}
		if n := m.Names(); len(n) != 0 {
			t.Errorf("empty Map Names = %q", n)
		}
		m.Delete("nothing")
		if err := m.Set("b", Policy{Hosts: []string{"127.0.0.0/8"}}); err != nil {
			t.Fatal(err)
		}
		if err := m.Set("a", Policy{}); err != nil {
			t.Fatal(err)
		}
		if err := m.Set("c.d", Policy{P2P: Rule{Deny: true}}); err != nil {
			t.Fatal(err)
		}
		if n := m.Names(); !slices.Equal(n, []string{"a", "b", "c.d"}) {
			t.Errorf("Names = %q", n)
		}
		r, ok := m.Get("b")
		if !ok || r == nil || r.AllowHost(netip.MustParseAddr("10.0.0.1")) {
			t.Errorf("Get(b) = %v, %v", r, ok)
		}

		// A failed Set keeps the old entry.
		err := m.Set("b", Policy{Hosts: []string{"10.0.0.0/33"}})
		if err == nil || !strings.Contains(err.Error(), `"b"`) || !strings.Contains(err.Error(), `bad host "10.0.0.0/33"`) {
			t.Errorf("Set bad host: %v", err)
		}
		if r2, ok := m.Get("b"); !ok || r2 != r {
			t.Error("failed Set replaced the entry")
		}
		if err := m.Set("new", Policy{Hosts: []string{"bad"}}); err == nil {
			t.Error("Set bad host: no error")
		}
		if _, ok := m.Get("new"); ok {
			t.Error("failed Set added an entry")
		}

		// Rules already handed out do not change with the Map.
		if err := m.Set("b", Policy{}); err != nil {
			t.Fatal(err)
		}
		if r.AllowHost(netip.MustParseAddr("10.0.0.1")) {
			t.Error("Set changed Rules already handed out")
		}
		if r2, _ := m.Get("b"); !r2.AllowHost(netip.MustParseAddr("10.0.0.1")) {
			t.Error("Set did not replace the entry")
		}

		m.Delete("b")
		if _, ok := m.Get("b"); ok {
			t.Error("Delete left the entry")
		}
		if n := m.Names(); !slices.Equal(n, []string{"a", "c.d"}) {
			t.Errorf("Names after Delete = %q", n)
		}

		for _, bad := range []string{"", "a%%1", "%%"} {
			if err := m.Set(bad, Policy{}); err == nil {
				t.Errorf("Set(%q): no error", bad)
			}
			if _, ok := m.Get(bad); ok {
				t.Errorf("Set(%q) added an entry", bad)
			}
		}
	}
}

func TestNilMap(t *testing.T) {
	var m *Map
	if r, ok := m.Get("anyone"); !ok || r != nil {
		t.Errorf("nil Map Get = %v, %v; want nil, true", r, ok)
	}
	if n := m.Names(); n != nil {
		t.Errorf("nil Map Names = %q", n)
	}
	m.Delete("x")
	if err := m.Set("x", Policy{}); err == nil {
		t.Error("Set on nil Map: no error")
	}
}

func TestMapConcurrent(t *testing.T) {
	m := NewMap()
	const workers = 16
	const rounds = 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				name := fmt.Sprintf("c%d", (w+i)%7)
				switch i % 4 {
				case 0:
					p := Policy{Hosts: []string{fmt.Sprintf("10.%d.0.0/16", i%256)}, P2P: allow(name)}
					if err := m.Set(name, p); err != nil {
						t.Error(err)
						return
					}
				case 1:
					if r, ok := m.Get(name); ok {
						// Rules are read by many connections at once.
						_ = r.AllowHost(netip.MustParseAddr("10.1.2.3"))
						_ = r.AllowP2P(name)
						_ = r.Policy()
					}
				case 2:
					m.Delete(name)
				case 3:
					_ = m.Names()
					if err := m.Set(name, Policy{Hosts: []string{"bad"}}); err == nil {
						t.Error("Set bad host: no error")
						return
					}
				}
			}
		}()
	}
	// Shared Rules under concurrent reads.
	r := mustCompile(t, Policy{Hosts: []string{"10.0.0.0/8", "::1"}, Subscribe: allow("a/#")})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if !r.AllowHost(netip.MustParseAddr("10.9.9.9")) || r.AllowHost(netip.MustParseAddr("::2")) ||
					!r.AllowSubscribe("a/+") || r.AllowSubscribe("#") {
					t.Error("wrong answer under concurrency")
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, n := range m.Names() {
		if !strings.HasPrefix(n, "c") {
			t.Errorf("unexpected name %q", n)
		}
	}
}

const exampleFile = `{
  "test":  { "hosts": ["127.0.0.0/8"] },
  "test2": {
    "hosts": ["10.0.0.0/8", "::1"],
    "p2p": ["test"],
    "publish": ["news/#"],
    "subscribe": ["news/#", "unit/+/status"],
    "broadcast": [],
    "deny_p2p": false
  }
}
`

func TestLoadExample(t *testing.T) {
	m, err := Load(strings.NewReader(exampleFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Names(); !slices.Equal(n, []string{"test", "test2"}) {
		t.Fatalf("Names = %q", n)
	}
	test, _ := m.Get("test")
	test2, _ := m.Get("test2")
	if _, ok := m.Get("test3"); ok {
		t.Error("unlisted client may connect")
	}

	checks := []struct {
		what string
		got  bool
		want bool
	}{
		{"test from 127.0.0.1", test.AllowHost(netip.MustParseAddr("127.0.0.1")), true},
		{"test from 10.0.0.1", test.AllowHost(netip.MustParseAddr("10.0.0.1")), false},
		{"test from ::1", test.AllowHost(netip.MustParseAddr("::1")), false},
		{"test p2p anyone", test.AllowP2P("anyone"), true},
		{"test publish", test.AllowPublish("x/y"), true},
		{"test subscribe #", test.AllowSubscribe("#"), true},
		{"test broadcast *", test.AllowBroadcast("*"), true},
		{"test2 from 10.2.3.4", test2.AllowHost(netip.MustParseAddr("10.2.3.4")), true},
		{"test2 from ::1", test2.AllowHost(netip.MustParseAddr("::1")), true},
		{"test2 from 127.0.0.1", test2.AllowHost(netip.MustParseAddr("127.0.0.1")), false},
		{"test2 p2p test", test2.AllowP2P("test"), true},
		{"test2 p2p test%%1", test2.AllowP2P("test%%1"), true},
		{"test2 p2p test2", test2.AllowP2P("test2"), false},
		{"test2 publish news/a", test2.AllowPublish("news/a"), true},
		{"test2 publish unit/1/status", test2.AllowPublish("unit/1/status"), false},
		{"test2 subscribe news/#", test2.AllowSubscribe("news/#"), true},
		{"test2 subscribe unit/+/status", test2.AllowSubscribe("unit/+/status"), true},
		{"test2 subscribe unit/#", test2.AllowSubscribe("unit/#"), false},
		{"test2 broadcast test", test2.AllowBroadcast("test"), false},
		{"test2 broadcast *", test2.AllowBroadcast("*"), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}

	want := Policy{
		Hosts:     []string{"10.0.0.0/8", "::1"},
		P2P:       Rule{Allow: []string{"test"}},
		Publish:   Rule{Allow: []string{"news/#"}},
		Subscribe: Rule{Allow: []string{"news/#", "unit/+/status"}},
		Broadcast: Rule{Allow: []string{}, Deny: true},
	}
	if got := test2.Policy(); !reflect.DeepEqual(got, want) {
		t.Errorf("test2 Policy = %#v\nwant %#v", got, want)
	}
	if got := test.Policy(); !reflect.DeepEqual(got, Policy{Hosts: []string{"127.0.0.0/8"}}) {
		t.Errorf("test Policy = %#v", got)
	}
}

func TestLoadRules(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Policy
	}{
		{"empty file object", `{}`, Policy{}},
		{"empty client", `{"a": {}}`, Policy{}},
		{"absent allows all", `{"a": {"hosts": ["::1"]}}`, Policy{Hosts: []string{"::1"}}},
		{"empty list denies all", `{"a": {"publish": []}}`, Policy{Publish: Rule{Allow: []string{}, Deny: true}}},
		{"deny switch alone", `{"a": {"deny_subscribe": true}}`, Policy{Subscribe: Rule{Deny: true}}},
		{"deny switch false", `{"a": {"deny_broadcast": false}}`, Policy{}},
		{"deny with list", `{"a": {"p2p": ["x"], "deny_p2p": true}}`, Policy{P2P: Rule{Allow: []string{"x"}, Deny: true}}},
		{"empty list with deny false", `{"a": {"p2p": [], "deny_p2p": false}}`, Policy{P2P: Rule{Allow: []string{}, Deny: true}}},
		{"all deny switches", `{"a": {"deny_p2p": true, "deny_publish": true, "deny_subscribe": true, "deny_broadcast": true}}`,
			Policy{P2P: Rule{Deny: true}, Publish: Rule{Deny: true}, Subscribe: Rule{Deny: true}, Broadcast: Rule{Deny: true}}},
		{"whitespace and unicode", " \n{ \"ünï.cødé\" : { \"broadcast\" : [ \"ü.*\" ] } } \n\t", Policy{Broadcast: allow("ü.*")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(strings.NewReader(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range m.Names() {
				r, _ := m.Get(n)
				if got := r.Policy(); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: Policy = %#v\nwant %#v", n, got, tt.want)
				}
			}
		})
	}

	m, err := Load(strings.NewReader(`{"a": {"publish": [], "deny_subscribe": true, "broadcast": ["x"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := m.Get("a")
	if r.AllowPublish("x") || r.AllowSubscribe("x") || !r.AllowBroadcast("x") || r.AllowBroadcast("y") || !r.AllowP2P("y") {
		t.Error("loaded rules answer wrongly")
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string // substrings of the error
	}{
		{"empty input", ``, []string{"aaa: ", "empty"}},
		{"only space", "  \n", []string{"empty"}},
		{"not an object", `[]`, []string{"want a JSON object"}},
		{"null", `null`, []string{"want a JSON object"}},
		{"string", `"x"`, []string{"want a JSON object"}},
		{"unknown field", `{"test": {"hosts": ["::1"], "publsh": ["a"]}}`, []string{`client "test"`, `unknown field "publsh"`}},
		{"field in the wrong case", `{"test": {"Hosts": ["::1"]}}`, []string{`client "test"`, `unknown field "Hosts"`}},
		{"bad CIDR", `{"ok": {}, "test2": {"hosts": ["10.0.0.0/33"]}}`, []string{`client "test2"`, `bad host "10.0.0.0/33"`}},
		{"bad IP", `{"x": {"hosts": ["10.0.0.256"]}}`, []string{`client "x"`, `bad host "10.0.0.256"`}},
		{"trailing garbage", `{"a": {}} x`, []string{"trailing"}},
		{"trailing object", `{"a": {}}{"b": {}}`, []string{"trailing"}},
		{"trailing brace", `{"a": {}}}`, []string{"trailing"}},
		{"truncated", `{"a": {}`, []string{"unexpected EOF"}},
		{"truncated value", `{"a": {"hosts": [`, []string{`client "a"`}},
		{"truncated key", `{"a"`, []string{"unexpected EOF"}},
		{"syntax", `{"a": {"hosts": ["x",]}}`, []string{`client "a"`, "invalid character"}},
		{"syntax top", `{"a" {}}`, []string{`client "a"`, "colon", "at byte"}},
		{"syntax key", `{a: {}}`, []string{"invalid character", "at byte 1"}},
		{"empty name", `{"": {}}`, []string{"empty client name"}},
		{"secondary name", `{"a%%1": {}}`, []string{`"a%%1"`, "primary"}},
		{"duplicate client", `{"a": {}, "b": {}, "a": {"hosts": ["::1"]}}`, []string{`client "a" listed twice`}},
		{"client null", `{"a": null}`, []string{`client "a"`, "want an object"}},
		{"client list", `{"a": []}`, []string{`client "a"`, "want an object"}},
		{"client string", `{"a": "x"}`, []string{`client "a"`, "want an object"}},
		{"list null", `{"a": {"p2p": null}}`, []string{`client "a"`, "p2p", "want a list"}},
		{"list of numbers", `{"a": {"publish": [1]}}`, []string{`client "a"`, "publish", "want a list of strings"}},
		{"list is string", `{"a": {"subscribe": "news/#"}}`, []string{`client "a"`, "subscribe", "want a list"}},
		{"list item null", `{"a": {"broadcast": ["x", null]}}`, []string{`client "a"`, "broadcast[1]", "null"}},
		{"hosts null", `{"a": {"hosts": null}}`, []string{`client "a"`, "hosts"}},
		{"hosts empty", `{"a": {"hosts": []}}`, []string{`client "a"`, "hosts", "empty"}},
		{"hosts number", `{"a": {"hosts": [8]}}`, []string{`client "a"`, "hosts"}},
		{"deny not bool", `{"a": {"deny_p2p": "yes"}}`, []string{`client "a"`, "deny_p2p", "true or false"}},
		{"deny null", `{"a": {"deny_publish": null}}`, []string{`client "a"`, "deny_publish"}},
		{"deny number", `{"a": {"deny_subscribe": 1}}`, []string{`client "a"`, "deny_subscribe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(strings.NewReader(tt.json))
			if err == nil {
				t.Fatalf("Load(%q) = %v, nil; want error", tt.json, m.Names())
			}
			if m != nil {
				t.Error("Load returned a Map with an error")
			}
			if !strings.HasPrefix(err.Error(), "aaa: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// spaces reads as n blanks, to build large inputs without holding them twice.
type spaces struct{ n int }

func (s *spaces) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), s.n)
	for i := range p[:n] {
		p[i] = ' '
	}
	s.n -= n
	return n, nil
}

func TestLoadSize(t *testing.T) {
	obj := `{"a": {}}`
	m, err := Load(io.MultiReader(strings.NewReader(obj), &spaces{maxFileSize - len(obj)}))
	if err != nil {
		t.Fatalf("Load of exactly the limit: %v", err)
	}
	if _, ok := m.Get("a"); !ok {
		t.Error("client missing")
	}

	_, err = Load(io.MultiReader(strings.NewReader(obj), &spaces{maxFileSize - len(obj) + 1}))
	if err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Errorf("Load past the limit: %v", err)
	}

	// An endless reader must not be read to its end.
	_, err = Load(endless{})
	if err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("Load of endless input: %v", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, fmt.Errorf("disk on fire") }

func TestLoadReadError(t *testing.T) {
	_, err := Load(failReader{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Load read error: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "aaa.json")
	if err := os.WriteFile(good, []byte(exampleFile), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := LoadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Names(); !slices.Equal(n, []string{"test", "test2"}) {
		t.Errorf("Names = %q", n)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"x": {"hosts": ["1.2.3.4/40"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `client "x"`) {
		t.Errorf("LoadFile(bad): %v", err)
	}

	missing := filepath.Join(dir, "missing.json")
	_, err = LoadFile(missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadFile(missing): %v", err)
	}
}

func TestLoadManyClients(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("{")
	for i := range 1000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"c%04d": {"hosts": ["10.%d.%d.0/24"], "p2p": ["c%04d"]}`, i, i/256, i%256, (i+1)%1000)
	}
	b.WriteString("}")
	m, err := Load(&b)
	if err != nil {
		t.Fatal(err)
	}
	names := m.Names()
	if len(names) != 1000 || names[0] != "c0000" || names[999] != "c0999" {
		t.Fatalf("Names: %d, %q...", len(names), names[:2])
	}
	r, _ := m.Get("c0300")
	if !r.AllowHost(netip.MustParseAddr("10.1.44.7")) || r.AllowHost(netip.MustParseAddr("10.1.45.7")) ||
		!r.AllowP2P("c0301") || r.AllowP2P("c0300") {
		t.Error("wrong rules for c0300")
	}
}

func TestBrokerMethods(t *testing.T) {
	m, err := Load(strings.NewReader(`{
  "plugin": {"broker": ["test", "client.list", "x.*"]},
  "mute": {"deny_broker": true},
  "none": {"broker": []},
  "op": {}
}`))
	if err != nil {
		t.Fatal(err)
	}
	get := func(n string) *Rules { r, _ := m.Get(n); return r }
	for _, c := range []struct {
		who, method string
		want        bool
	}{
		{"plugin", "test", true},
		{"plugin", "client.list", true},
		{"plugin", "x.y.z", true},
		{"plugin", "rtbus.client.kill", false},
		{"plugin", "client", false},
		{"mute", "test", false},
		{"none", "info", false},
		{"op", "rtbus.client.kill", true},
	} {
		if got := get(c.who).AllowBroker(c.method); got != c.want {
			t.Errorf("%s calls %s: %v, want %v", c.who, c.method, got, c.want)
		}
	}
	if !(*Rules)(nil).AllowBroker("rtbus.client.kill") {
		t.Error("nil Rules refuse a method")
	}
	if p := get("plugin").Policy(); !slices.Equal(p.Broker.Allow, []string{"test", "client.list", "x.*"}) {
		t.Errorf("Policy().Broker = %#v", p.Broker)
	}
	if _, err := Load(strings.NewReader(`{"a": {"deny_broker": 1}}`)); err == nil || !strings.Contains(err.Error(), "deny_broker") {
		t.Errorf("bad deny_broker: %v", err)
	}
}

func TestReplace(t *testing.T) {
	load := func(s string) *Map {
		t.Helper()
		m, err := Load(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := load(`{"same": {"publish": ["a/#"]}, "changed": {}, "gone": {}}`)
	same, _ := m.Get("same")
	next := load(`{"same": {"publish": ["a/#"]}, "changed": {"deny_broker": true}, "new": {}}`)
	changed := m.Replace(next)
	if !slices.Equal(changed, []string{"changed", "gone", "new"}) {
		t.Errorf("changed = %q", changed)
	}
	if r, _ := m.Get("same"); r != same {
		t.Error("an unchanged policy got new Rules")
	}
	if r, ok := m.Get("changed"); !ok || r.AllowBroker("test") {
		t.Error("changed policy not applied")
	}
	if _, ok := m.Get("gone"); ok {
		t.Error("removed name still admitted")
	}
	// m and next share nothing: changing one leaves the other.
	next.Delete("new")
	if _, ok := m.Get("new"); !ok {
		t.Error("Replace shares its source's table")
	}
	if c := m.Replace(m); c != nil {
		t.Errorf("Replace with itself: %q", c)
	}
	if c := m.Replace(NewMap()); !slices.Equal(c, []string{"changed", "new", "same"}) {
		t.Errorf("Replace with an empty map: %q", c)
	}
	if c := (*Map)(nil).Replace(next); c != nil {
		t.Errorf("nil Map: %q", c)
	}
}
