package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/rtbus/rtbus/bus"
)

// DefaultMaxHandlers is how many requests a client handles at once unless Options says
// otherwise.
const DefaultMaxHandlers = 64

// Options configure New. The zero value uses the defaults.
type Options struct {
	// MaxHandlers bounds the requests handled at once, each in its own goroutine (default
	// DefaultMaxHandlers). When all are busy the client stops reading until one finishes,
	// which holds back replies to its own calls too (over a socket only once the
	// connection's queue is full: the socket client hands replies over as it reads them), so
	// keep it above the number of handlers that may wait on something slow.
	MaxHandlers int
	// Realtime sends requests and notifications with bus.QoSRealtimeProcessed rather than
	// bus.QoSProcessed: flushed at once rather than batched, and answered the same way.
	Realtime bool
	// WatchTargets subscribes the connection to .broker/info and fails a waiting call with
	// CodeNotRegistered as soon as the broker announces that its target's primary name
	// unregistered. Without it nothing tells a caller that its target went away and the call
	// ends with its context. (Secondaries are not announced: a call to NAME%%X is failed when
	// NAME goes.)
	WatchTargets bool
}

// Request is one incoming call, as a handler sees it. Params alias the received frame:
// read-only, and valid after the handler returns only if the handler keeps no reference to
// a buffer it will modify.
type Request struct {
	Sender   string // the caller's full name ("NAME%%X" for a secondary); the reply goes there
	Method   string
	Params   []byte
	Realtime bool // the request came with a realtime QoS; the reply goes back with QoS 3
	NoReply  bool // a call0 (call id 0): the result is discarded
}

// HandlerFunc answers a request with a result (raw bytes, by convention MessagePack) or an
// error: an *Error travels with its code and data, a bus error as -32000 - its code, any
// other error as CodeInternal with its text as data. ctx ends when the client stops.
type HandlerFunc func(ctx context.Context, r Request) ([]byte, error)

// Notification is one incoming notification.
type Notification struct {
	Sender   string
	Data     []byte // read-only
	Realtime bool
}

// Client is an RPC client and server on one bus connection. It owns every one-to-one
// message the connection receives: replies complete its calls, requests go to the handlers
// registered with Handle, notifications to HandleNotification. Publications and broadcasts
// go to HandleFrame. Its methods are safe for concurrent use.
type Client struct {
	conn   bus.Conn
	qos    bus.QoS
	max    int
	ctx    context.Context // handlers' context, cancelled when the client stops
	cancel context.CancelFunc

	handlers atomic.Pointer[handlers]
	hmu      sync.Mutex // serialises handler registration

	mu      sync.Mutex
	next    uint32 // the next call id; never 0
	pending map[uint32]*call
	err     error // why the client stopped; nil while running
	done    chan struct{}

	async     asyncSender         // conn, when it can send without waiting for the ack
	refusedFn func(uint64, error) // c.refused, made once
	work      chan job
	workers   int  // goroutines serving work; only the reader changes it
	inline    bool // serve requests in the reading goroutine: for handlers that never wait
	watch     bool // Options.WatchTargets
}

type handlers struct {
	methods  map[string]*entry
	fallback HandlerFunc
	notify   func(Notification)
	frame    func(bus.Frame)
}

// entry keeps the method name so that a request's Method costs no allocation.
type entry struct {
	name string
	h    HandlerFunc
}

type job struct {
	m        message
	sender   string
	realtime bool
}

type call struct {
	ch     chan result
	target string // primary name, for WatchTargets
}

type result struct {
	data []byte
	err  error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan result, 1)} }}

// reqPool holds request and reply frames for connections that copy what they send before Send
// returns (the socket client): the in-process bus keeps the payload it is given.
var reqPool = sync.Pool{New: func() any { return new([]byte) }}

// newFrame returns an empty buffer for a frame of size bytes to send on c, and the pooled
// buffer to hand to doneFrame once sent: nil in-process, where the receiver keeps the frame,
// so that a caller of many calls, call0s or notifications over a socket makes no garbage at
// the rate of its frames.
func (c *Client) newFrame(size int) (frame []byte, bp *[]byte) {
	if c.async == nil {
		return make([]byte, 0, size), nil
	}
	bp = reqPool.Get().(*[]byte)
	return (*bp)[:0], bp
}

// doneFrame returns frame, sent, to reqPool as bp, unless it grew too large to keep.
func doneFrame(bp *[]byte, frame []byte) {
	if bp != nil && cap(frame) <= 64<<10 {
		*bp = frame
		reqPool.Put(bp)
	}
}

// asyncSender is a connection that can send without waiting for the ack (the socket
// client, transport.Client): a call then waits once, for the reply or for a refusing ack,
// whichever comes, rather than first for the ack and then for the reply.
type asyncSender interface {
	SendAsync(qos bus.QoS, target string, payload []byte, done func(ref uint64, err error), ref uint64) error
	Err() error
}

// hooker is a connection that can hand frames over in its reading goroutine (the socket
// client): replies then complete their calls there, without a hand-off to c's reader.
type hooker interface {
	SetHook(func(*bus.Frame) bool)
}

// New makes conn an RPC client and starts reading it. From then on the RPC client owns
// conn's received frames: do not call conn.Recv or conn.Frames elsewhere. Close closes
// conn.
func New(conn bus.Conn, opts Options) *Client {
	c := newClient(conn, opts)
	c.start()
	return c
}

func newClient(conn bus.Conn, opts Options) *Client {
	if opts.MaxHandlers <= 0 {
		opts.MaxHandlers = DefaultMaxHandlers
	}
	c := &Client{
		conn:    conn,
		qos:     bus.QoSProcessed,
		max:     opts.MaxHandlers,
		next:    1,
		pending: make(map[uint32]*call),
		done:    make(chan struct{}),
		work:    make(chan job),
	}
	if opts.Realtime {
		c.qos = bus.QoSRealtimeProcessed
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.handlers.Store(&handlers{methods: map[string]*entry{}})
	c.watch = opts.WatchTargets
	c.async, _ = conn.(asyncSender)
	c.refusedFn = c.refused
	if h, ok := conn.(hooker); ok {
		h.SetHook(c.hook)
	}
	return c
}

func (c *Client) start() {
	go c.read()
	if c.watch {
		// A failure here means the connection is gone, which the reader reports.
		_ = c.conn.Subscribe(bus.QoSProcessed, bus.TopicInfo)
	}
}

// Conn returns the connection the client runs on, for publishing and subscribing.
func (c *Client) Conn() bus.Conn { return c.conn }

// Name returns the connection's name.
func (c *Client) Name() string { return c.conn.Name() }

// Done is closed when the client stops: closed, or its connection lost.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped, or nil while it runs. The error matches
// ErrClientClosed and the connection's reason (bus.ErrClosed and the like).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection, fails the calls still waiting, and cancels the handlers'
// context.
func (c *Client) Close() error {
	err := c.conn.Close()
	c.stop(bus.ErrClosed)
	return err
}

func (c *Client) update(f func(h *handlers)) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	old := c.handlers.Load()
	h := *old
	h.methods = make(map[string]*entry, len(old.methods)+1)
	for k, v := range old.methods {
		h.methods[k] = v
	}
	f(&h)
	c.handlers.Store(&h)
}

// Handle registers h for method, replacing any earlier handler; a nil h removes it.
func (c *Client) Handle(method string, h HandlerFunc) {
	c.update(func(hs *handlers) {
		if h == nil {
			delete(hs.methods, method)
		} else {
			hs.methods[method] = &entry{name: method, h: h}
		}
	})
}

// HandleFallback registers h for methods without a handler of their own. Without one,
// they are answered with CodeMethodNotFound.
func (c *Client) HandleFallback(h HandlerFunc) {
	c.update(func(hs *handlers) { hs.fallback = h })
}

// HandleNotification registers f for notifications. It runs in the reading goroutine, in
// the order notifications arrive, so it must return quickly and must not wait for a call
// of this client (hand the work to another goroutine instead). Without it notifications are
// dropped.
func (c *Client) HandleNotification(f func(Notification)) {
	c.update(func(hs *handlers) { hs.notify = f })
}

// HandleFrame registers f for publications and broadcasts, with the same rules as
// HandleNotification. Without it they are dropped.
func (c *Client) HandleFrame(f func(bus.Frame)) {
	c.update(func(hs *handlers) { hs.frame = f })
}

// Call calls method on target with params and waits for the result, until ctx ends or the
// client stops. The result aliases the received reply: read-only. Errors: an *Error with the
// target's code and data (CodeNotRegistered, matching bus.ErrNotRegistered, at once when no
// client named target exists); ctx's error; ErrClientClosed when the client stops, with the
// reason. A cancelled call frees its slot and a reply arriving later is dropped.
func (c *Client) Call(ctx context.Context, target, method string, params []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cl := callPool.Get().(*call)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		callPool.Put(cl)
		return nil, err
	}
	id := c.nextIDLocked()
	if c.watch {
		cl.target = bus.PrimaryName(target)
	}
	c.pending[id] = cl
	c.mu.Unlock()

	frame, bp := c.newFrame(6 + len(method) + len(params))
	frame = appendRequest(frame, id, method, params)
	var err error
	if c.async != nil {
		err = c.async.SendAsync(c.qos, target, frame, c.refusedFn, uint64(id))
	} else {
		err = c.conn.Send(c.qos, target, frame)
	}
	doneFrame(bp, frame)
	if err != nil {
		if r, taken := c.forget(id, cl); taken {
			return r.data, r.err // the client stopped meanwhile: its reason says more
		}
		callPool.Put(cl)
		return nil, c.sendErr(err)
	}
	select {
	case r := <-cl.ch:
		callPool.Put(cl)
		return r.data, r.err
	case <-ctx.Done():
		if r, taken := c.forget(id, cl); taken {
			return r.data, r.err // the answer raced the cancellation: keep it
		}
		callPool.Put(cl)
		return nil, ctx.Err()
	}
}

// refused fails call id with the bus's refusal of its request (CodeNotRegistered and the
// like). A connection that ended is left to the reader, which fails every call with the
// reason.
func (c *Client) refused(ref uint64, err error) {
	id := uint32(ref)
	if err == nil || c.async.Err() != nil {
		return
	}
	err = busErr(err)
	c.mu.Lock()
	cl := c.pending[id]
	if cl != nil {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	if cl != nil {
		cl.ch <- result{err: err}
	}
}

// forget removes a pending call. If the reader or stop took it first, it waits for the
// result they are handing over (it is on its way: they removed it under the lock) and
// returns it with taken set.
func (c *Client) forget(id uint32, cl *call) (result, bool) {
	c.mu.Lock()
	_, ok := c.pending[id]
	if ok {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	if ok {
		return result{}, false
	}
	r := <-cl.ch
	callPool.Put(cl)
	return r, true
}

// nextIDLocked returns a free call id: 1…2^32-1, then 1 again (WIRE.md §8).
func (c *Client) nextIDLocked() uint32 {
	for {
		id := c.next
		c.next++
		if c.next == 0 {
			c.next = 1
		}
		if _, busy := c.pending[id]; !busy {
			return id
		}
	}
}

func (c *Client) sendErr(err error) error {
	if errors.Is(err, bus.ErrClosed) {
		if e := c.Err(); e != nil {
			return e
		}
		return fmt.Errorf("%w: %w", ErrClientClosed, err)
	}
	return busErr(err)
}

// Call0 sends a request that wants no reply (call id 0). It returns once the bus has routed
// it: an *Error for a bus refusal (CodeNotRegistered when target does not exist).
func (c *Client) Call0(target, method string, params []byte) error {
	frame, bp := c.newFrame(6 + len(method) + len(params))
	return c.send(target, appendRequest(frame, 0, method, params), bp)
}

// Notify sends a notification to target. Its errors are Call0's.
func (c *Client) Notify(target string, data []byte) error {
	frame, bp := c.newFrame(1 + len(data))
	return c.send(target, appendNotification(frame, data), bp)
}

// send sends a frame that wants no reply, then recycles it (see newFrame); a refusal comes
// back as its *Error.
func (c *Client) send(target string, frame []byte, bp *[]byte) error {
	err := c.conn.Send(c.qos, target, frame)
	doneFrame(bp, frame)
	if err != nil {
		return c.sendErr(err)
	}
	return nil
}

// stop ends the client once: every waiting call fails with reason.
func (c *Client) stop(reason error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = fmt.Errorf("%w: %w", ErrClientClosed, reason)
	failed := c.pending
	c.pending = make(map[uint32]*call)
	c.mu.Unlock()
	close(c.done)
	c.cancel()
	for _, cl := range failed {
		cl.ch <- result{err: c.err}
	}
}

// complete hands a reply or an error frame to the call waiting for it; one for a call that
// is no longer waiting is dropped.
func (c *Client) complete(m *message) {
	c.mu.Lock()
	cl := c.pending[m.id]
	if cl != nil {
		delete(c.pending, m.id)
	}
	c.mu.Unlock()
	if cl == nil {
		return
	}
	if m.kind == kindReply {
		cl.ch <- result{data: m.data}
	} else {
		cl.ch <- result{err: &Error{Code: m.code, Data: m.data}}
	}
}

type batchReader interface {
	RecvBatch(ctx context.Context, dst []bus.Frame, max int) ([]bus.Frame, error)
}

// read dispatches received frames until the connection ends.
func (c *Client) read() {
	var err error
	if br, ok := c.conn.(batchReader); ok {
		var batch []bus.Frame
		for err == nil {
			batch, err = br.RecvBatch(context.Background(), batch[:0], 256)
			for i := range batch {
				c.dispatch(&batch[i])
			}
			clear(batch)
		}
	} else {
		for {
			var f bus.Frame
			if f, err = c.conn.Recv(context.Background()); err != nil {
				break
			}
			c.dispatch(&f)
		}
	}
	c.stop(err)
}

// hook completes calls with the replies that the connection's reader hands it.
func (c *Client) hook(f *bus.Frame) bool {
	if f.Kind != bus.KindMessage {
		return false
	}
	m, ok := parse(f.Payload)
	if !ok || (m.kind != kindReply && m.kind != kindError) {
		return false
	}
	c.complete(&m)
	return true
}

func (c *Client) dispatch(f *bus.Frame) {
	if c.watch && f.Kind == bus.KindPublish && f.Topic == bus.TopicInfo && f.Sender == bus.BrokerName {
		c.targetGone(f.Payload)
	}
	if f.Kind != bus.KindMessage {
		if h := c.handlers.Load().frame; h != nil && (f.Kind == bus.KindPublish || f.Kind == bus.KindBroadcast) {
			h(*f)
		}
		return
	}
	m, ok := parse(f.Payload)
	if !ok {
		return // not an RPC frame; nothing to answer it with
	}
	switch m.kind {
	case kindReply, kindError:
		c.complete(&m)
	case kindNotification:
		if h := c.handlers.Load().notify; h != nil {
			h(Notification{Sender: f.Sender, Data: m.data, Realtime: f.Realtime})
		}
	case kindRequest:
		j := job{m: m, sender: f.Sender, realtime: f.Realtime}
		if c.inline {
			c.serve(&j)
			return
		}
		select {
		case c.work <- j: // an idle worker takes it
			return
		default:
		}
		if c.workers < c.max {
			c.workers++
			go c.worker(j)
			return
		}
		select {
		case c.work <- j:
		case <-c.done:
		}
	}
}

// worker serves requests until the client stops.
func (c *Client) worker(j job) {
	for {
		c.serve(&j)
		select {
		case j = <-c.work:
		case <-c.done:
			return
		}
	}
}

func (c *Client) serve(j *job) {
	hs := c.handlers.Load()
	r := Request{Sender: j.sender, Params: j.m.data, Realtime: j.realtime, NoReply: j.m.id == 0}
	var h HandlerFunc
	if e := hs.methods[string(j.m.method)]; e != nil {
		r.Method, h = e.name, e.h
	} else {
		r.Method, h = string(j.m.method), hs.fallback
	}
	var res []byte
	var err error
	if h == nil {
		err = &Error{Code: CodeMethodNotFound}
	} else {
		res, err = c.run(h, r)
	}
	if r.NoReply {
		return
	}
	qos := bus.QoSProcessed
	if j.realtime {
		qos = bus.QoSRealtimeProcessed
	}
	var code int16
	var data []byte
	size := 5 + len(res)
	if err != nil {
		code, data = errorOf(err)
		size = 7 + len(data)
	}
	frame, bp := c.newFrame(size)
	if err != nil {
		frame = appendError(frame, j.m.id, code, data)
	} else {
		frame = appendReply(frame, j.m.id, res)
	}
	// A caller gone meanwhile is no error of ours: its reply has nowhere to go. So over a
	// socket the ack is not waited for, and the handler's goroutine is free at once.
	if c.async != nil {
		_ = c.async.SendAsync(qos, j.sender, frame, nil, 0)
	} else {
		_ = c.conn.Send(qos, j.sender, frame)
	}
	doneFrame(bp, frame)
}

// run calls h, turning a panic into CodeInternal so that one bad handler does not bring the
// process down.
func (c *Client) run(h HandlerFunc, r Request) (res []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, Errorf(CodeInternal, "handler panicked: %v", p)
		}
	}()
	return h(c.ctx, r)
}

// targetGone fails the calls waiting on a client whose unregistration .broker announced
// (WIRE.md §6: {"s":"unreg","d":NAME,"t":…}).
func (c *Client) targetGone(p []byte) {
	var a struct {
		S string `msgpack:"s"`
		D string `msgpack:"d"`
	}
	if Unmarshal(p, &a) != nil || a.S != "unreg" || a.D == "" {
		return
	}
	var gone []*call
	c.mu.Lock()
	for id, cl := range c.pending {
		if cl.target == a.D {
			delete(c.pending, id)
			gone = append(gone, cl)
		}
	}
	c.mu.Unlock()
	for _, cl := range gone {
		cl.ch <- result{err: &Error{Code: CodeNotRegistered, Data: []byte("target unregistered during the call")}}
	}
}
