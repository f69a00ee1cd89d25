// Package natsfan carries between the nodes of an rtbus cluster what reaches streams without
// being stored: ephemeral messages, stream kills, and presence queries. It rides plain NATS
// subjects (core NATS: at most once, nothing kept) on the node's own connection, and applies
// what arrives to the node's own sse.Hub.
//
// Every node delivers to its own streams: the sender applies a message or kill to its hub at
// once and publishes it; every other node applies it when it arrives; the sender drops its own
// echo. A stream thus gets a message once, from the node it is connected to.
//
// Nodes know each other by a hello every HelloEvery (and a bye on Close), so that a request
// gathering answers (presence, push counts) returns as soon as every live node answered, and
// at the latest after the deadline, naming the nodes that did not answer.
package natsfan

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// Defaults of Options.
const (
	DefaultDeadline   = 250 * time.Millisecond
	DefaultHelloEvery = time.Second
)

// Options configure New. The zero value is usable but for Node.
type Options struct {
	// Node names this node in presence answers (cluster.Node.NodeName).
	Node string
	// Deadline bounds a gathering request (presence, a counted push); 0 = DefaultDeadline.
	Deadline time.Duration
	// HelloEvery is how often the node says it is there; a node unheard for three and a half
	// periods is forgotten. 0 = DefaultHelloEvery.
	HelloEvery time.Duration
	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

// Conn is one open stream of some node.
type Conn struct {
	Node string // the node it is connected to; "" in single-node mode
	sse.Conn
}

// Presence is what Conns gathered.
type Presence struct {
	Conns []Conn // oldest first
	// Nodes answered (this one included); Missing were known to be there but did not answer
	// within the deadline; Truncated answered with part of their streams only (more than one
	// NATS message holds). Sorted; nil in single-node mode.
	Nodes, Missing, Truncated []string
}

// Fan is one node's side of the fan-out. Its methods are safe for concurrent use.
type Fan struct {
	nc       *nats.Conn
	hub      *sse.Hub
	log      *slog.Logger
	id       string // this instance: a node restarted under the same name is another peer
	node     string
	hdr      nats.Header
	deadline time.Duration
	hello    time.Duration

	inbox string // replies come to inbox.<request number>
	subs  []*nats.Subscription

	mu      sync.Mutex
	peers   map[string]*peer // other instances by id
	pending map[uint64]*request
	next    uint64
	closed  bool

	stop chan struct{}
	done chan struct{}
}

type peer struct {
	name string
	seen time.Time
}

// request is a gathering in progress: the replies so far, and the peers still awaited.
type request struct {
	waiting map[string]string // id → name of the peers not yet answered
	replies []reply
	all     chan struct{} // closed when waiting empties
}

type reply struct {
	from, node string
	data       []byte
}

// New subscribes nc to the fan-out subjects, applying what arrives to hub, and says hello.
// Close undoes it.
func New(nc *nats.Conn, hub *sse.Hub, opts Options) (*Fan, error) {
	var idb [8]byte
	rand.Read(idb[:])
	f := &Fan{
		nc: nc, hub: hub, log: opts.Logger, id: hex.EncodeToString(idb[:]), node: opts.Node,
		deadline: opts.Deadline, hello: opts.HelloEvery,
		peers: map[string]*peer{}, pending: map[uint64]*request{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.deadline <= 0 {
		f.deadline = DefaultDeadline
	}
	if f.hello <= 0 {
		f.hello = DefaultHelloEvery
	}
	f.hdr = nats.Header{hdrFrom: {f.id}, hdrNode: {f.node}}
	f.inbox = nc.NewInbox()
	for _, s := range []struct {
		subj string
		h    nats.MsgHandler
	}{
		{subjPush, f.onPush}, {subjKill, f.onKill}, {subjWho, f.onWho}, {subjNode, f.onNode},
		{f.inbox + ".*", f.onReply},
	} {
		sub, err := nc.Subscribe(s.subj, s.h)
		if err != nil {
			f.unsubscribe()
			return nil, err
		}
		f.subs = append(f.subs, sub)
	}
	f.sayHello(false)
	go f.helloLoop()
	return f, nil
}

// Close says bye (so that the other nodes stop waiting for this one at once) and
// unsubscribes. Messages arriving meanwhile may still reach the hub, which is safe.
func (f *Fan) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.mu.Unlock()
	close(f.stop)
	<-f.done
	f.sayHello(true)
	f.unsubscribe()
	f.nc.FlushTimeout(time.Second) // the bye goes out before the caller closes the connection
}

func (f *Fan) unsubscribe() {
	for _, s := range f.subs {
		s.Unsubscribe()
	}
}

// publish sends body on subj with this node's headers (and reply, if set). While the
// connection reconnects, the client buffers what is published; once it is closed, it fails.
func (f *Fan) publish(subj, reply string, body []byte) error {
	m := &nats.Msg{Subject: subj, Reply: reply, Header: f.hdr, Data: body}
	err := f.nc.PublishMsg(m)
	if err != nil {
		f.log.Warn("cluster fan-out: publish", "subject", subj, "err", err)
	}
	return err
}

// own reports whether m is this node's echo.
func (f *Fan) own(m *nats.Msg) bool { return m.Header.Get(hdrFrom) == f.id }

// Push hands m (an ephemeral message: Seq 0, Data its pushed value) to this node's streams and
// to every other node's. It returns how many streams took it: with count, this node's plus
// those of the nodes that answered within the deadline (a node that answers later, or not at
// all, still gets the message, uncounted); without, this node's only, at once.
func (f *Fan) Push(m sse.Message, count bool) int {
	n := f.hub.Publish(m)
	body, err := encodePush(pushMsg{Tenant: m.Tenant, User: m.User, Event: m.Event, Data: m.Data})
	if err != nil { // m.Data was compacted by the caller: cannot happen
		f.log.Error("cluster fan-out: push", "err", err)
		return n
	}
	if !count {
		f.publish(subjPush, "", body)
		return n
	}
	for _, r := range f.gather(subjPush, body).replies {
		if c, err := decodeCount(r.data); err == nil {
			n += c.N
		} else {
			f.log.Warn("cluster fan-out: push count", "node", r.node, "err", err)
		}
	}
	return n
}

func (f *Fan) onPush(m *nats.Msg) {
	if f.own(m) {
		return
	}
	p, err := decodePush(m.Data)
	if err != nil {
		f.log.Warn("cluster fan-out: push dropped", "from", m.Header.Get(hdrNode), "err", err)
		return
	}
	n := f.hub.Publish(sse.Message{Tenant: p.Tenant, User: p.User, Event: p.Event, Record: p.Data, Data: p.Data})
	if m.Reply != "" {
		f.publish(m.Reply, "", append(strconv.AppendInt([]byte(`{"n":`), int64(n), 10), '}'))
	}
}

// KillSession, KillUser and CloseAnonymous apply the hub's method of that name on every node.
func (f *Fan) KillSession(session string) { f.kill(killSession, session) }

func (f *Fan) KillUser(userID string) { f.kill(killUser, userID) }

func (f *Fan) CloseAnonymous(tenant string) { f.kill(killAnon, tenant) }

func (f *Fan) kill(kind, id string) {
	if id == "" {
		return
	}
	f.apply(killMsg{kind, id})
	body, _ := json.Marshal(killMsg{kind, id})
	f.publish(subjKill, "", body)
}

func (f *Fan) apply(k killMsg) {
	switch k.Kind {
	case killSession:
		f.hub.KillSession(k.ID)
	case killUser:
		f.hub.KillUser(k.ID)
	case killAnon:
		f.hub.CloseAnonymous(k.ID)
	}
}

func (f *Fan) onKill(m *nats.Msg) {
	if f.own(m) {
		return
	}
	k, err := decodeKill(m.Data)
	if err != nil {
		f.log.Warn("cluster fan-out: kill dropped", "from", m.Header.Get(hdrNode), "err", err)
		return
	}
	f.apply(k)
}

// Conns lists the open streams of tenant ("": every tenant), and of the user with that id
// among them ("": every user), on every node that answers within the deadline.
func (f *Fan) Conns(tenant, user string) Presence {
	body, _ := json.Marshal(whoMsg{tenant, user})
	g := f.gather(subjWho, body)
	p := Presence{Nodes: []string{f.node}, Missing: g.missing}
	for _, c := range f.hub.Conns(tenant, user) {
		p.Conns = append(p.Conns, Conn{f.node, c})
	}
	for _, r := range g.replies {
		w, err := decodeWhoReply(r.data)
		if err != nil {
			f.log.Warn("cluster fan-out: presence reply", "node", r.node, "err", err)
			p.Missing = append(p.Missing, r.node)
			continue
		}
		p.Nodes = append(p.Nodes, r.node)
		if w.Truncated {
			p.Truncated = append(p.Truncated, r.node)
		}
		for _, c := range w.Conns {
			p.Conns = append(p.Conns, fromWire(r.node, c))
		}
	}
	sort.Strings(p.Nodes)
	sort.Strings(p.Missing)
	sort.Strings(p.Truncated)
	sort.SliceStable(p.Conns, func(i, j int) bool {
		a, b := &p.Conns[i], &p.Conns[j]
		if !a.Since.Equal(b.Since) {
			return a.Since.Before(b.Since)
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.ID < b.ID
	})
	return p
}

func (f *Fan) onWho(m *nats.Msg) {
	if f.own(m) || m.Reply == "" {
		return
	}
	q, err := decodeWho(m.Data)
	if err != nil {
		f.log.Warn("cluster fan-out: presence query dropped", "from", m.Header.Get(hdrNode), "err", err)
		return
	}
	conns := f.hub.Conns(q.Tenant, q.User)
	r := whoReply{Conns: make([]wireConn, len(conns))}
	for i, c := range conns {
		r.Conns[i] = toWire(c)
	}
	body, _ := json.Marshal(r)
	// A reply must fit one NATS message: keep the oldest streams that fit and say so.
	limit := int(f.nc.MaxPayload()) - 1024
	for len(body) > limit && len(r.Conns) > 0 {
		r.Conns = r.Conns[:len(r.Conns)*limit/len(body)*9/10]
		r.Truncated = true
		body, _ = json.Marshal(r)
	}
	f.publish(m.Reply, "", body)
}

// gathered is what a gathering got: the replies, and the names of the peers that did not
// answer in time.
type gathered struct {
	replies []reply
	missing []string
}

// gather publishes body on subj with a reply subject and collects the replies until every
// known peer answered or the deadline passed.
func (f *Fan) gather(subj string, body []byte) gathered {
	f.mu.Lock()
	f.pruneLocked(time.Now())
	f.next++
	id := f.next
	r := &request{waiting: make(map[string]string, len(f.peers)), all: make(chan struct{})}
	for pid, p := range f.peers {
		r.waiting[pid] = p.name
	}
	if len(r.waiting) == 0 {
		close(r.all)
	}
	f.pending[id] = r
	f.mu.Unlock()

	if f.publish(subj, f.inbox+"."+strconv.FormatUint(id, 10), body) == nil {
		t := time.NewTimer(f.deadline)
		select {
		case <-r.all:
		case <-t.C:
		}
		t.Stop()
	} // else nobody will answer: no use waiting

	f.mu.Lock()
	delete(f.pending, id)
	g := gathered{replies: r.replies}
	for _, name := range r.waiting {
		g.missing = append(g.missing, name)
	}
	f.mu.Unlock()
	return g
}

func (f *Fan) onReply(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 10, 64)
	from := m.Header.Get(hdrFrom)
	if err != nil || from == "" || from == f.id {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.pending[id]
	if r == nil {
		return // too late
	}
	for _, x := range r.replies {
		if x.from == from {
			return // a duplicate
		}
	}
	r.replies = append(r.replies, reply{from, m.Header.Get(hdrNode), m.Data})
	if _, ok := r.waiting[from]; ok {
		delete(r.waiting, from)
		if len(r.waiting) == 0 {
			close(r.all)
		}
	}
}

// sayHello announces this node (or its leaving).
func (f *Fan) sayHello(bye bool) {
	h := f.hdr
	if bye {
		h = nats.Header{hdrFrom: {f.id}, hdrNode: {f.node}, hdrBye: {"1"}}
	}
	if err := f.nc.PublishMsg(&nats.Msg{Subject: subjNode, Header: h}); err != nil {
		f.log.Warn("cluster fan-out: hello", "err", err)
	}
}

func (f *Fan) helloLoop() {
	defer close(f.done)
	t := time.NewTicker(f.hello)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.sayHello(false)
			f.mu.Lock()
			f.pruneLocked(time.Now())
			f.mu.Unlock()
		}
	}
}

// pruneLocked forgets the peers unheard for three and a half hello periods.
func (f *Fan) pruneLocked(now time.Time) {
	for id, p := range f.peers {
		if now.Sub(p.seen) > f.hello*7/2 {
			delete(f.peers, id)
		}
	}
}

func (f *Fan) onNode(m *nats.Msg) {
	from := m.Header.Get(hdrFrom)
	if from == "" || from == f.id {
		return
	}
	f.mu.Lock()
	if m.Header.Get(hdrBye) != "" {
		delete(f.peers, from)
		// A gathering in progress stops waiting for it.
		for _, r := range f.pending {
			if _, ok := r.waiting[from]; ok {
				delete(r.waiting, from)
				if len(r.waiting) == 0 {
					close(r.all)
				}
			}
		}
		f.mu.Unlock()
		return
	}
	p, known := f.peers[from]
	if !known {
		p = &peer{}
		f.peers[from] = p
	}
	p.name, p.seen = m.Header.Get(hdrNode), time.Now()
	closed := f.closed
	f.mu.Unlock()
	if !known && !closed {
		f.sayHello(false) // the newcomer learns of this node now, not at the next tick
	}
}

// Peers lists the other nodes this one knows of, sorted by name.
func (f *Fan) Peers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pruneLocked(time.Now())
	var out []string
	for _, p := range f.peers {
		out = append(out, p.name)
	}
	sort.Strings(out)
	return out
}
