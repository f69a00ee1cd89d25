package sse

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Message is one publication as a stream sends it. A published Message is shared by every
// stream it goes to: the publisher must not modify its slices afterwards.
type Message struct {
	Tenant string
	User   string // non-empty: only streams of (or watching) this user id get it (ephemeral per-user push)
	Seq    uint64 // publication id (the SSE id: field); 0 for ephemeral messages (no id: field)
	// IDPrefix is written before Seq in the id ("<epoch>." in cluster mode, where ids are
	// cursors into the shared log; "" on a single node). It must need no JSON escaping.
	IDPrefix   string
	Event      string // SSE event: field (the event name)
	Collection string // the event's collection, for Filter; "" for ephemeral messages
	Record     []byte // compact JSON of the whole event record (as json.Marshal gives it)
	Data       []byte // compact JSON of the event's data only (for ?format=data)
	// Anon is Record without the user_id, for anonymous streams (StreamOptions.Anonymous);
	// nil: those streams get Data as the record.
	Anon []byte
}

// HubOptions configure a Hub. The zero value is usable.
type HubOptions struct {
	QueueSize int           // messages queued per stream before it is dropped as slow; 0 = 1024
	KeepAlive time.Duration // a stream idle this long gets a keep-alive event; 0 = 15 s
	Retry     time.Duration // the retry: hint on the first message; 0 = 3 s

	// PollHold is how long a long-polling connection (its id, and the ephemeral messages
	// addressed to it) is kept between two polls; 0 = 60 s.
	PollHold time.Duration

	// Now is the clock that StreamOptions.Expires is checked against; nil: time.Now.
	Now func() time.Time
}

// Hub fans publications out to the open streams of each tenant, whatever their transport
// (SSE, WebSocket, long-polling). Its methods are safe for concurrent use. Close it to end its
// streams and its keep-alive goroutine.
type Hub struct {
	queueSize int
	retryMS   int
	keepAlive time.Duration
	pollHold  time.Duration
	now       func() time.Time

	mu      sync.RWMutex
	tenants map[string][]*stream // streams of a tenant, in no order
	users   map[string][]*stream // streams opened by, or watching, a user
	polls   map[uint64]*stream   // long-polling connections by id
	// sessions holds the streams opened with a session id (StreamOptions.Session).
	sessions map[string][]*stream
	closed   bool

	ids   atomic.Uint64 // connection ids
	stats hubStats

	n    atomic.Int64
	stop chan struct{}
	done chan struct{}
}

// NewHub returns a Hub with no streams and starts its keep-alive goroutine.
func NewHub(opts HubOptions) *Hub {
	h := &Hub{
		queueSize: opts.QueueSize,
		retryMS:   int(opts.Retry / time.Millisecond),
		keepAlive: opts.KeepAlive,
		pollHold:  opts.PollHold,
		now:       opts.Now,
		tenants:   map[string][]*stream{},
		users:     map[string][]*stream{},
		polls:     map[uint64]*stream{},
		sessions:  map[string][]*stream{},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if h.queueSize <= 0 {
		h.queueSize = 1024
	}
	if opts.Retry <= 0 {
		h.retryMS = 3000
	}
	if h.retryMS <= 0 { // a Retry under 1 ms
		h.retryMS = 1
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.keepAlive <= 0 {
		h.keepAlive = 15 * time.Second
	}
	if h.pollHold <= 0 {
		h.pollHold = 60 * time.Second
	}
	go h.keepAliveLoop()
	return h
}

// item is one publication queued on streams: the message and its encodings, made once (per
// encoding) by the first stream that writes it and shared (read-only) by the others.
type item struct {
	m   Message
	raw []byte // set: these bytes whatever the encoding (a control frame for one stream)
	enc [nEncodings]struct {
		once sync.Once
		b    []byte
	}
}

func (it *item) bytes(e encoding) []byte {
	if it.raw != nil {
		return it.raw
	}
	c := &it.enc[e]
	c.once.Do(func() { c.b = appendEncoded(make([]byte, 0, encodedCap(&it.m)), e, &it.m, 0) })
	return c.b
}

// encodedCap is room for m in any encoding, so that encoding it allocates once: the record,
// the name, the framing, and an eighth more for SSE's escapes (\u003a for each ':' in a
// string, \uXXXX for non-ASCII).
func encodedCap(m *Message) int {
	n := max(len(m.Record), len(m.Data), len(m.Anon))
	return n + n/8 + len(m.Event) + 64
}

func anonRecord(m *Message) []byte {
	if m.Anon != nil {
		return m.Anon
	}
	return m.Data
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

// Publish queues m on every stream of m.Tenant whose filter it passes (with m.User set, only
// on the streams of that user and of those watching it) and returns how many streams it was
// queued on. Anonymous streams get publications only (Seq != 0). It never blocks on a
// stream: a stream whose queue is full is ended with ErrSlow instead. The message is encoded
// at most once per encoding, by the first stream that sends it.
func (h *Hub) Publish(m Message) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.publishLocked(m)
}

func (h *Hub) publishLocked(m Message) int {
	var ss []*stream
	if m.User != "" {
		ss = h.users[m.User]
	} else {
		ss = h.tenants[m.Tenant]
	}
	if len(ss) == 0 {
		return 0
	}
	it := &item{m: m}
	n := 0
	for _, s := range ss {
		if s.wants(&m) {
			if s.push(it, h.queueSize) {
				n++
			}
		}
	}
	return n
}

// PublishBatch is Publish for each of ms in order, and returns the sum of what Publish would
// return. A stream gets all its messages of a run of ms with the same tenant (and no User)
// queued at once and is woken once for them, so that it writes them together: publications
// that are ready together (those of one sync of the store) cost a stream one write, not one
// each. ms is not kept.
func (h *Hub) PublishBatch(ms []Message) int {
	if len(ms) == 1 {
		return h.Publish(ms[0])
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	var its []*item
	for i := 0; i < len(ms); {
		j := i + 1
		if ms[i].User != "" {
			n += h.publishLocked(ms[i])
			i = j
			continue
		}
		for j < len(ms) && ms[j].Tenant == ms[i].Tenant && ms[j].User == "" {
			j++
		}
		ss := h.tenants[ms[i].Tenant]
		if len(ss) == 0 {
			i = j
			continue
		}
		its = its[:0]
		for k := i; k < j; k++ {
			its = append(its, &item{m: ms[k]})
		}
		for _, s := range ss {
			n += s.pushAll(its, h.queueSize)
		}
		i = j
	}
	return n
}

// Close ends every stream (Serve returns ErrClosed), makes later Serve calls return ErrClosed
// at once, and stops the keep-alive goroutine.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	for _, ss := range h.tenants {
		for _, s := range ss {
			s.fail(ErrClosed)
		}
	}
	h.mu.Unlock()
	close(h.stop)
	<-h.done
}

// CloseUser ends the open streams of the user (revocation) at once; their Serve returns
// ErrUserClosed. Streams merely watching the user are left open. (KillUser tells them why
// first.)
func (h *Hub) CloseUser(userID string) {
	h.mu.RLock()
	for _, s := range h.users[userID] {
		if s.user == userID {
			s.fail(ErrUserClosed)
		}
	}
	h.mu.RUnlock()
}

// Streams is the number of open streams (long-polling connections included).
func (h *Hub) Streams() int { return int(h.n.Load()) }

func (h *Hub) register(s *stream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	ss := h.tenants[s.tenant]
	s.tidx = len(ss)
	h.tenants[s.tenant] = append(ss, s)
	for _, u := range s.addressees() {
		h.users[u] = append(h.users[u], s)
	}
	if s.transport == tPoll {
		h.polls[s.id] = s
	}
	if s.session != "" {
		h.sessions[s.session] = append(h.sessions[s.session], s)
	}
	h.n.Add(1)
	h.stats.streams[s.transport].Add(1)
	return true
}

// unregister removes s from the hub; why is the reason it ended (nil: the client went).
func (h *Hub) unregister(s *stream, why error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unregisterLocked(s, why)
}

func (h *Hub) unregisterLocked(s *stream, why error) {
	if !h.detachLocked(s, why) {
		return // already gone
	}
	if s.session != "" {
		setList(h.sessions, s.session, without(h.sessions[s.session], s))
	}
	for _, u := range s.addressees() {
		setList(h.users, u, without(h.users[u], s))
	}
}

// setList sets m[key] to ss, or deletes the key when ss is empty.
func setList(m map[string][]*stream, key string, ss []*stream) {
	if len(ss) == 0 {
		delete(m, key)
	} else {
		m[key] = ss
	}
}

// detachLocked takes s out of the hub but for the user and session lists it is on (which
// the caller fixes); false if it was gone already.
func (h *Hub) detachLocked(s *stream, why error) bool {
	if s.tidx < 0 {
		return false
	}
	h.stats.ended(s.transport, why)
	h.stats.messages[s.transport].Add(s.sent.Load())
	ss := h.tenants[s.tenant]
	last := len(ss) - 1
	ss[s.tidx] = ss[last]
	ss[s.tidx].tidx = s.tidx
	ss[last] = nil
	if last == 0 {
		delete(h.tenants, s.tenant)
	} else {
		h.tenants[s.tenant] = ss[:last]
	}
	s.tidx = -1
	if s.transport == tPoll && h.polls[s.id] == s {
		delete(h.polls, s.id)
	}
	h.n.Add(-1)
	return true
}

// forgetPollsLocked unregisters those of ss that are long-polling connections gone
// (pollGone), and fixes each user and session list they were on once, not once per
// connection: one user's thousands of connections expiring in one sweep would otherwise hold
// the hub's lock, and delay every publication, for a time quadratic in their number.
func (h *Hub) forgetPollsLocked(ss []*stream, now int64) {
	var users, sessions map[string]bool
	for _, s := range ss {
		if !s.pollGone(now) || !h.detachLocked(s, s.failed()) {
			continue
		}
		if users == nil {
			users, sessions = map[string]bool{}, map[string]bool{}
		}
		for _, u := range s.addressees() {
			users[u] = true
		}
		if s.session != "" {
			sessions[s.session] = true
		}
	}
	gone := func(s *stream) bool { return s.tidx < 0 } // detached
	for u := range users {
		setList(h.users, u, slices.DeleteFunc(h.users[u], gone))
	}
	for id := range sessions {
		setList(h.sessions, id, slices.DeleteFunc(h.sessions[id], gone))
	}
}

// without removes s from ss (in no order).
func without(ss []*stream, s *stream) []*stream {
	for i, u := range ss {
		if u == s {
			ss[i] = ss[len(ss)-1]
			ss[len(ss)-1] = nil
			return ss[:len(ss)-1]
		}
	}
	return ss
}

// keepAliveLoop ticks every half KeepAlive: a stream that wrote nothing during a whole tick
// gets a keep-alive (so an idle stream sees one at least every KeepAlive), a stream whose
// write has been stuck for a whole tick (a client that stopped reading while nothing more was
// published) is ended as slow, a stream past its Expires is ended, within half a KeepAlive
// of it, with no timer of its own, a WebSocket that left a ping unanswered for two periods is
// ended, and a long-polling connection unused for PollHold is forgotten.
//
// The sweep visits a list of the streams taken under the hub's lock, and holds no lock of the
// hub meanwhile (a visit takes the stream's lock, which a publication queueing on it holds,
// and reads a WebSocket's control frames): a long sweep delays no publication, and no stream
// that opens or ends. A stream that ended meanwhile is visited once more, to no effect.
func (h *Hub) keepAliveLoop() {
	defer close(h.done)
	t := time.NewTicker(h.keepAlive / 2)
	defer t.Stop()
	var all, idle []*stream
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		now := h.now().UnixNano()
		h.mu.RLock()
		for _, ss := range h.tenants {
			all = append(all, ss...)
		}
		h.mu.RUnlock()
		for _, s := range all {
			if s.tick(now) {
				idle = append(idle, s)
			}
		}
		clear(all)
		if cap(all) > 64 && cap(all) > 4*len(all) { // most streams went: let the list go
			all = nil
		} else {
			all = all[:0]
		}
		if len(idle) > 0 {
			h.mu.Lock()
			h.forgetPollsLocked(idle, now)
			h.mu.Unlock()
			clear(idle)
			idle = idle[:0]
		}
	}
}
