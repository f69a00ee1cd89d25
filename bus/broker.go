package bus

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rtbus/rtbus/aaa"
)

// Names and topics the broker owns (WIRE.md §6).
const (
	BrokerName = ".broker"      // the broker's own in-process client
	TopicWarn  = ".broker/warn" // every client is subscribed on registration; carries the shutdown warning
	TopicInfo  = ".broker/info" // registration and unregistration announcements of primaries
)

// Broker routes frames between registered clients. It is safe for concurrent use. It runs no
// goroutines of its own: routing happens in the sender's goroutine, and delivered frames wait
// in each receiver's queue until the receiver reads them.
type Broker struct {
	queueSize int
	policy    *aaa.Map
	log       *slog.Logger
	started   time.Time

	mu       sync.RWMutex // guards everything below and every Client's broker-owned fields
	clients  map[string]*Client
	names    nameNode
	subs     topicNode
	excl     topicNode
	nexcl    int  // exclusions in excl; publications skip that walk while it is 0
	closed   bool // no new registrations
	departed counters
	self     *Client
	served   bool      // ServeSelf has handed .broker to a reader
	unserved sync.Once // the warning that .broker is not served
}

// errUnserved is what a message to .broker gets while nobody serves it: the not-registered
// error, which a socket client sees in its ack at once, rather than silence.
var errUnserved error = unservedError{}

type unservedError struct{}

func (unservedError) Error() string {
	return "bus: " + BrokerName + " is not served (not registered): the host program did not call rpc.ServeBroker"
}

func (unservedError) Unwrap() error { return ErrNotRegistered }

type counters struct {
	rFrames, rBytes, wFrames, wBytes uint64
	sent                             [3]uint64 // by sentP2P, sentPublish, sentBroadcast
}

// Indexes of Client.sent and counters.sent.
const (
	sentP2P = iota
	sentPublish
	sentBroadcast
)

func (c *counters) add(o counters) {
	for i := range c.sent {
		c.sent[i] += o.sent[i]
	}
	c.rFrames += o.rFrames
	c.rBytes += o.rBytes
	c.wFrames += o.wFrames
	c.wBytes += o.wBytes
}

// New returns a running broker with its own client ".broker" registered.
func New(opts ...Option) *Broker {
	b := &Broker{
		queueSize: DefaultQueueSize,
		log:       slog.Default(),
		started:   time.Now(),
		clients:   make(map[string]*Client),
	}
	for _, o := range opts {
		o(b)
	}
	// Until an RPC server answers for it, .broker refuses one-to-one messages with
	// ErrNotRegistered and drops publications and broadcasts, so that its queue can never
	// overflow.
	b.self = b.newClient(BrokerName, clientConfig{queueSize: 1}, nil, nil)
	b.self.q.discard = true
	b.mu.Lock()
	b.insertLocked(b.self)
	b.mu.Unlock()
	return b
}

// ServeSelf hands the broker's own client, .broker, to one reader that answers what it is sent:
// rpc.ServeBroker uses it to answer the core methods of WIRE.md §9. Until then .broker drops
// publications and broadcasts and refuses one-to-one messages with an error that matches
// ErrNotRegistered (a socket client gets that code in its ack), so that a host program that
// forgot to serve it fails at once rather than in a caller's timeout. The returned client queues frames like any other, with senders
// waiting up to a second for room rather than disconnecting it (as BUS/RT's internal
// clients), so its reader must keep reading; closing it unregisters .broker. A second call
// returns ErrBusy, a call after Close ErrBrokerClosed.
func (b *Broker) ServeSelf() (*Client, error) { return b.serveSelf(nil) }

// ServeSelfFunc is ServeSelf, except that one-to-one frames sent to .broker are not queued:
// h gets each one in the sender's goroutine, as part of routing it. A request is then
// answered without a hand-off to another goroutine, and its reply is queued for the sender
// before the ack of the request, which WIRE.md §5 orders after the routing. h runs
// concurrently for different senders, must not block, and must not keep f or its payload
// once it returns. Publications and broadcasts to .broker are queued for the returned
// client as with ServeSelf.
func (b *Broker) ServeSelfFunc(h func(f Frame)) (*Client, error) { return b.serveSelf(h) }

// serveSelf takes h by value so that the frame of every Send, which routing may hand to h,
// does not escape to the heap.
func (b *Broker) serveSelf(h func(Frame)) (*Client, error) {
	// Queue settings are read without locks on the routing path, so the dropping client is
	// replaced by a new one rather than changed in place. A frame routed to the old one in
	// the instant of the swap is dropped, as it would have been a moment before.
	c := b.newClient(BrokerName, clientConfig{queueSize: b.queueSize, block: time.Second}, nil, nil)
	c.direct = h
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrBrokerClosed
	}
	if b.served {
		b.mu.Unlock()
		return nil, fmt.Errorf("bus: %s is already served: %w", BrokerName, ErrBusy)
	}
	old := b.self
	b.removeLocked(old, nil)
	b.insertLocked(c)
	b.self, b.served = c, true
	b.mu.Unlock()
	b.retire(old, ErrClosed, true)
	return c, nil
}

// RegisterClient registers an in-process client named name (WIRE.md §6). Errors match, under
// errors.Is: ErrBadData for an empty or malformed name, or a dot-name from outside the
// process; ErrBusy for a name already registered; ErrNotRegistered for a secondary
// "NAME%%X" whose primary NAME is not registered; ErrAccessDenied when the access policy
// refuses the name or its address; ErrBrokerClosed after Close.
func (b *Broker) RegisterClient(name string, opts ...ClientOption) (*Client, error) {
	cfg := clientConfig{queueSize: b.queueSize, policy: b.policy}
	for _, o := range opts {
		o(&cfg)
	}
	if err := checkName(name, cfg.info); err != nil {
		return nil, err
	}
	primary := PrimaryName(name)
	secondary := primary != name

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrBrokerClosed
	}
	// The rules are looked up under mu, so that a policy replaced meanwhile (a reload) either
	// is seen here or finds this client when it lists the clients to disconnect (which takes
	// mu): a client never keeps rules older than the reload that missed it.
	var rules *aaa.Rules
	if !secondary && !strings.HasPrefix(name, ".") {
		var ok bool
		if rules, ok = cfg.policy.Get(name); !ok {
			b.mu.Unlock()
			return nil, fmt.Errorf("bus: register %q: name not in the access policy: %w", name, ErrAccessDenied)
		}
		if src := cfg.info.Source; src.IsValid() && !rules.AllowHost(src.Addr()) {
			b.mu.Unlock()
			return nil, fmt.Errorf("bus: register %q: address %s not allowed: %w", name, src.Addr(), ErrAccessDenied)
		}
	}
	if _, ok := b.clients[name]; ok {
		b.mu.Unlock()
		return nil, fmt.Errorf("bus: register %q: name already registered: %w", name, ErrBusy)
	}
	var parent *Client
	if secondary {
		if parent = b.clients[primary]; parent == nil {
			b.mu.Unlock()
			return nil, fmt.Errorf("bus: register %q: primary %q not registered: %w", name, primary, ErrNotRegistered)
		}
		rules = parent.rules // secondaries share their primary's access rules
		if src := cfg.info.Source; src.IsValid() && !rules.AllowHost(src.Addr()) {
			b.mu.Unlock()
			return nil, fmt.Errorf("bus: register %q: address %s not allowed: %w", name, src.Addr(), ErrAccessDenied)
		}
	}
	c := b.newClient(name, cfg, rules, parent)
	b.insertLocked(c)
	b.mu.Unlock()

	if !secondary {
		b.announce("reg", name)
	}
	return c, nil
}

func checkName(name string, info ConnInfo) error {
	switch {
	case name == "":
		return fmt.Errorf("bus: register: name is empty: %w", ErrBadData)
	case !validText(name):
		return fmt.Errorf("bus: register %q: name is not valid UTF-8 or contains a zero byte: %w", name, ErrBadData)
	case name[0] == '.' && !info.internal():
		return fmt.Errorf("bus: register %q: names starting with \".\" are reserved for in-process clients: %w", name, ErrBadData)
	}
	return nil
}

// validText reports whether s can travel in a frame: valid UTF-8 without zero bytes, which
// separate the fields of a frame body.
func validText(s string) bool {
	// One pass settles the common case, short ASCII; anything else takes the full check.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c >= utf8.RuneSelf {
			return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
		}
	}
	return true
}

func (b *Broker) newClient(name string, cfg clientConfig, rules *aaa.Rules, parent *Client) *Client {
	c := &Client{
		b:      b,
		name:   name,
		rules:  rules,
		info:   cfg.info,
		parent: parent,
		subs:   make(map[string]struct{}),
	}
	if c.info.Kind == "" {
		c.info.Kind = KindInternal
	}
	c.q.init(cfg.queueSize, cfg.block, false)
	return c
}

func (b *Broker) insertLocked(c *Client) {
	b.clients[c.name] = c
	b.names.add(c.name, c)
	if c.parent != nil {
		if c.parent.secondaries == nil {
			c.parent.secondaries = make(map[*Client]struct{})
		}
		c.parent.secondaries[c] = struct{}{}
	}
	c.subs[TopicWarn] = struct{}{}
	b.subs.add(TopicWarn, c)
}

// removeLocked takes c and its secondaries out of every table and returns them.
func (b *Broker) removeLocked(c *Client, out []*Client) []*Client {
	if b.clients[c.name] != c {
		return out
	}
	for s := range c.secondaries {
		out = b.removeLocked(s, out)
	}
	delete(b.clients, c.name)
	b.names.remove(c.name)
	for t := range c.subs {
		b.subs.remove(t, c)
	}
	for t := range c.excl {
		b.excl.remove(t, c)
	}
	b.nexcl -= len(c.excl)
	if c.parent != nil {
		delete(c.parent.secondaries, c)
	}
	return append(out, c)
}

// retire closes the queue of a removed client and adds its counters to the broker's totals;
// closing first means no frame can be queued to it after it is counted.
func (b *Broker) retire(c *Client, reason error, drop bool) {
	c.q.close(reason, drop)
	n := c.counters()
	b.mu.Lock()
	b.departed.add(n)
	b.mu.Unlock()
}

// disconnect unregisters c (and its secondaries) and closes its queue with reason; drop
// discards the frames it has not read.
func (b *Broker) disconnect(c *Client, reason error, drop bool) {
	b.mu.Lock()
	gone := b.removeLocked(c, nil)
	closed := b.closed
	b.mu.Unlock()
	if len(gone) == 0 {
		c.q.close(reason, drop) // already removed: only the reason may be news
	}
	for _, g := range gone {
		if g == c {
			b.retire(g, reason, drop)
		} else {
			b.retire(g, ErrPrimaryGone, true)
		}
		if g.parent == nil && !closed {
			b.announce("unreg", g.name)
		}
	}
}

// ForceDisconnect disconnects the client named name, and its secondaries, at once. Its reader
// sees ErrDisconnected. This is how a changed access policy is applied to a client already
// connected. It returns ErrNotRegistered if no such client exists.
func (b *Broker) ForceDisconnect(name string) error {
	b.mu.RLock()
	c := b.clients[name]
	b.mu.RUnlock()
	if c == nil || c == b.self {
		return fmt.Errorf("bus: disconnect %q: %w", name, ErrNotRegistered)
	}
	b.log.Info("bus: client disconnected by request", "client", name)
	b.disconnect(c, ErrDisconnected, true)
	return nil
}

// ClientRules returns the access rules that the client named name got when it registered
// (nil when its listener has no access policy), and false when no such client is
// registered. The broker's own methods use it to check what a caller may do.
func (b *Broker) ClientRules(name string) (*aaa.Rules, bool) {
	b.mu.RLock()
	c := b.clients[name]
	b.mu.RUnlock()
	if c == nil {
		return nil, false
	}
	return c.rules, true
}

// Close shuts the broker down: it publishes the shutdown warning on .broker/warn, refuses new
// registrations, and disconnects every client with ErrBrokerClosed. Frames already queued to a
// client stay readable, so readers drain their queues and then see the error. Close is safe to
// call more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()

	b.publish(BrokerName, TopicWarn, "", shutdownPayload(), true, false, nil)

	b.mu.Lock()
	all := make([]*Client, 0, len(b.clients))
	for _, c := range b.clients {
		all = append(all, c)
	}
	for _, c := range all {
		b.removeLocked(c, nil)
	}
	b.mu.Unlock()
	for _, c := range all {
		b.retire(c, ErrBrokerClosed, false)
	}
	return nil
}
