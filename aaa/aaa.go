package aaa

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/yl2chen/cidranger"

	"github.com/rtbus/rtbus/internal/match"
)

// Policy is what one primary client name may do. The zero Policy allows everything from
// anywhere, so that an entry only has to spell out the restrictions it wants.
type Policy struct {
	// Hosts lists the networks the client may connect from, as CIDR prefixes
	// ("127.0.0.0/8", "::1/128") or bare IP addresses, each meaning a single host. Empty
	// means any IPv4 and any IPv6 address: BUS/RT's default is 0.0.0.0/0, IPv4 only, but a
	// default that silently locks out every IPv6 client surprises more than it protects.
	// IPv4-mapped IPv6 prefixes ("::ffff:10.0.0.0/104") are read as the IPv4 prefix they
	// denote, as clients' mapped addresses are. Clients without a network address
	// (in-process, UNIX socket) are not checked against Hosts.
	Hosts []string

	// P2P limits the targets of one-to-one messages, as name masks ("?" one level, "*" one
	// or more). A mask that admits a primary name admits its secondaries ("name%%x") too.
	P2P Rule

	// Publish limits the topics the client publishes to, as topic patterns ("+" one level,
	// "#" one or more).
	Publish Rule

	// Subscribe limits the subscriptions the client makes, as topic patterns. A
	// subscription is checked as written, wildcards included, so a pattern admits only
	// subscriptions that cannot reach beyond it.
	Subscribe Rule

	// Broadcast limits the masks the client broadcasts to, as name masks; like
	// subscriptions, the broadcast mask is checked as written.
	Broadcast Rule

	// Broker limits the methods of the broker's own client, .broker, that the client may
	// call, as name masks over method names ("client.list", "rtbus.*"): a way to let a
	// plugin query the bus without letting it use the operator's methods, such as
	// rtbus.client.kill. Reaching .broker at all also takes a P2P rule that admits it.
	Broker Rule
}

// Rule is an allow-list with a deny switch. The zero Rule allows everything. A Rule with a
// non-empty Allow permits only what Allow matches, whatever Deny says; Deny with an empty
// Allow permits nothing. The switch exists because an empty list has to mean "no
// restriction" for the zero Rule to be useful.
type Rule struct {
	Allow []string
	Deny  bool
}

// Rules is a compiled, immutable Policy: what the bus copies when a client connects, so
// that checks on the hot path neither parse nor lock. A nil *Rules allows everything, which
// is what a bus without access control hands its clients.
type Rules struct {
	hosts     cidranger.Ranger // nil: any address
	p2p       rule
	publish   rule
	subscribe rule
	broadcast rule
	broker    rule
	policy    Policy
}

type rule struct {
	all   bool
	allow []string
}

func compileRule(r Rule) rule {
	if len(r.Allow) == 0 {
		return rule{all: !r.Deny}
	}
	return rule{allow: slices.Clone(r.Allow)}
}

// Compile checks p and builds its Rules. Only Hosts can be malformed; every string is a
// valid pattern, if perhaps not a useful one.
func Compile(p Policy) (*Rules, error) {
	r, err := compile(p)
	if err != nil {
		return nil, fmt.Errorf("aaa: %w", err)
	}
	return r, nil
}

// compile returns errors without the package prefix so that Load and Set can name the
// client first.
func compile(p Policy) (*Rules, error) {
	r := &Rules{
		p2p:       compileRule(p.P2P),
		publish:   compileRule(p.Publish),
		subscribe: compileRule(p.Subscribe),
		broadcast: compileRule(p.Broadcast),
		broker:    compileRule(p.Broker),
		policy:    clonePolicy(p),
	}
	if len(p.Hosts) > 0 {
		r.hosts = cidranger.NewPCTrieRanger()
		for _, h := range p.Hosts {
			n, err := parseHost(h)
			if err != nil {
				return nil, err
			}
			if err := r.hosts.Insert(cidranger.NewBasicRangerEntry(n)); err != nil {
				return nil, fmt.Errorf("bad host %q: %w", h, err)
			}
		}
	}
	return r, nil
}

// parseHost turns a Hosts entry into the net.IPNet cidranger wants. cidranger files a
// network by whether its address converts to IPv4, so a mapped prefix must be unmapped
// here or it would land in the IPv4 trie with an IPv6 mask.
func parseHost(h string) (net.IPNet, error) {
	var p netip.Prefix
	if strings.Contains(h, "/") {
		var err error
		p, err = netip.ParsePrefix(h)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "netip.ParsePrefix("+strconv.Quote(h)+"): ")
			return net.IPNet{}, fmt.Errorf("bad host %q: %s", h, msg)
		}
	} else {
		a, err := netip.ParseAddr(h)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "ParseAddr("+strconv.Quote(h)+"): ")
			return net.IPNet{}, fmt.Errorf("bad host %q: %s", h, msg)
		}
		if a.Zone() != "" {
			return net.IPNet{}, fmt.Errorf("bad host %q: zones are not allowed", h)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() {
		// Masked keeps the ::ffff: marker only for lengths of 96 and more.
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	a := p.Addr()
	return net.IPNet{
		IP:   net.IP(a.AsSlice()),
		Mask: net.CIDRMask(p.Bits(), a.BitLen()),
	}, nil
}

// AllowHost reports whether a client may connect from addr. An invalid (zero) addr stands
// for a client without a network address, which Hosts cannot speak about.
func (r *Rules) AllowHost(addr netip.Addr) bool {
	if r == nil || r.hosts == nil || !addr.IsValid() {
		return true
	}
	ok, err := r.hosts.Contains(net.IP(addr.Unmap().AsSlice()))
	return err == nil && ok
}

// AllowP2P reports whether the client may send a one-to-one message to target. The
// target's primary name is tried too, as secondaries are the same client to whoever
// writes the policy.
func (r *Rules) AllowP2P(target string) bool {
	if r == nil || r.p2p.all {
		return true
	}
	primary, _, secondary := strings.Cut(target, "%%")
	for _, m := range r.p2p.allow {
		if match.Name(m, target) || (secondary && match.Name(m, primary)) {
			return true
		}
	}
	return false
}

// AllowPublish reports whether the client may publish to topic.
func (r *Rules) AllowPublish(topic string) bool {
	if r == nil || r.publish.all {
		return true
	}
	for _, p := range r.publish.allow {
		if match.Topic(p, topic) {
			return true
		}
	}
	return false
}

// AllowSubscribe reports whether the client may subscribe to topic, a pattern taken
// literally: it is allowed when an allowed pattern matches it as if it were a topic, so
// "news/#" admits "news/+/x", while "news/a" does not admit "news/+".
func (r *Rules) AllowSubscribe(topic string) bool {
	if r == nil || r.subscribe.all {
		return true
	}
	for _, p := range r.subscribe.allow {
		if match.Topic(p, topic) {
			return true
		}
	}
	return false
}

// AllowBroadcast reports whether the client may broadcast to mask, taken literally as
// AllowSubscribe takes its topic: "test.*" admits "test.?", "test.a" does not admit "*".
func (r *Rules) AllowBroadcast(mask string) bool {
	if r == nil || r.broadcast.all {
		return true
	}
	for _, m := range r.broadcast.allow {
		if match.Name(m, mask) {
			return true
		}
	}
	return false
}

// AllowBroker reports whether the client may call method of .broker.
func (r *Rules) AllowBroker(method string) bool {
	if r == nil || r.broker.all {
		return true
	}
	for _, m := range r.broker.allow {
		if match.Name(m, method) {
			return true
		}
	}
	return false
}

// Policy returns a copy of the Policy r was compiled from, for display; changing it does
// not change r.
func (r *Rules) Policy() Policy {
	if r == nil {
		return Policy{}
	}
	return clonePolicy(r.policy)
}

func clonePolicy(p Policy) Policy {
	p.Hosts = slices.Clone(p.Hosts)
	p.P2P.Allow = slices.Clone(p.P2P.Allow)
	p.Publish.Allow = slices.Clone(p.Publish.Allow)
	p.Subscribe.Allow = slices.Clone(p.Subscribe.Allow)
	p.Broadcast.Allow = slices.Clone(p.Broadcast.Allow)
	p.Broker.Allow = slices.Clone(p.Broker.Allow)
	return p
}

// Map holds the Rules of each primary client name; a name that is not in a Map may not
// connect. It is safe for concurrent use. The zero Map is empty and ready to use, and a nil
// *Map means no access control at all.
//
// Changing a Map affects new connections only: a client keeps the Rules it got when it
// connected. To apply a change at once, disconnect the client and let it connect again:
// [Map.Replace] says whom a new policy changes.
type Map struct {
	mu sync.RWMutex
	m  map[string]*Rules
}

// NewMap returns an empty Map.
func NewMap() *Map {
	return &Map{m: make(map[string]*Rules)}
}

// Set compiles p and makes it the policy of the primary client name. On error the
// previous policy of name, if any, stays.
func (m *Map) Set(name string, p Policy) error {
	if m == nil {
		return errors.New("aaa: Set on a nil Map")
	}
	if err := checkName(name); err != nil {
		return fmt.Errorf("aaa: %w", err)
	}
	r, err := compile(p)
	if err != nil {
		return fmt.Errorf("aaa: client %q: %w", name, err)
	}
	m.set(name, r)
	return nil
}

func (m *Map) set(name string, r *Rules) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string]*Rules)
	}
	m.m[name] = r
}

// checkName rejects names that no connecting client could look up: the bus asks by primary
// name, and BUS/RT has no empty client names.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty client name")
	}
	if strings.Contains(name, "%%") {
		return fmt.Errorf("client name %q is not a primary name (a secondary takes its primary's policy)", name)
	}
	return nil
}

// Delete removes the policy of name, which may then no longer connect.
func (m *Map) Delete(name string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, name)
}

// Get returns the Rules for the primary client name, and false if that name may not
// connect. A nil *Map returns nil Rules and true: no access control.
func (m *Map) Get(name string) (*Rules, bool) {
	if m == nil {
		return nil, true
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.m[name]
	return r, ok
}

// Replace makes m hold the policies of from, all at once, and returns the names whose
// policy changed: added, removed or different. A client connected under one of those names
// still has its old Rules; disconnect it to apply the new ones. Names whose policy is the
// same keep their Rules. from is not changed, and m and from share nothing afterwards.
func (m *Map) Replace(from *Map) (changed []string) {
	if m == nil || m == from {
		return nil
	}
	next := make(map[string]*Rules)
	if from != nil {
		from.mu.RLock()
		for n, r := range from.m {
			next[n] = r // Rules are immutable, so they may be shared
		}
		from.mu.RUnlock()
	}
	m.mu.Lock()
	for n, old := range m.m {
		r, ok := next[n]
		switch {
		case !ok:
			changed = append(changed, n)
		case samePolicy(old.policy, r.policy):
			next[n] = old
		default:
			changed = append(changed, n)
		}
	}
	for n := range next {
		if _, ok := m.m[n]; !ok {
			changed = append(changed, n)
		}
	}
	m.m = next
	m.mu.Unlock()
	sort.Strings(changed)
	return changed
}

func samePolicy(a, b Policy) bool {
	same := func(x, y Rule) bool { return x.Deny == y.Deny && slices.Equal(x.Allow, y.Allow) }
	return slices.Equal(a.Hosts, b.Hosts) && same(a.P2P, b.P2P) && same(a.Publish, b.Publish) &&
		same(a.Subscribe, b.Subscribe) && same(a.Broadcast, b.Broadcast) && same(a.Broker, b.Broker)
}

// Names returns the client names in m, sorted so that listings are stable.
func (m *Map) Names() []string {
	if m == nil {
		return nil
	}
	m.mu.RLock()
	names := make([]string, 0, len(m.m))
	for n := range m.m {
		names = append(names, n)
	}
	m.mu.RUnlock()
	sort.Strings(names)
	return names
}
