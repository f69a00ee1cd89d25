package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/rtbus/rtbus/bus"
)

// DialOptions configure Dial. The zero value uses the defaults.
type DialOptions struct {
	Timeout     time.Duration // connect, handshake and ack timeout (default 1s); pings every second
	QueueSize   int           // delivered frames buffered before the reader stops reading (default 8192)
	FlushDelay  time.Duration // how long QoS 0 frames may wait to share a write (default 10µs; negative: none)
	WriteBuffer int           // bytes gathered before a write regardless of the delay (default 64 KiB)
	MaxFrame    int           // largest delivered frame body accepted; a larger one ends the connection (default 64 MiB)
	// TLS configures TLS for tls:// and wss:// addresses (nil: the system's roots and the
	// address's host name), and, when set, asks for TLS on a plain host:port too.
	TLS *tls.Config
}

// DefaultDialWriteBuffer is the default of DialOptions.WriteBuffer. A client streaming at QoS
// 0 fills it between two flushes, and larger writes cost the client and the broker's reader
// fewer system calls.
const DefaultDialWriteBuffer = 64 << 10

// DefaultMaxFrame is the default of DialOptions.MaxFrame: room for a frame at the default
// payload limit with long names.
const DefaultMaxFrame = 64 << 20

// Client is a bus client over a socket: the remote counterpart of *bus.Client, with the same
// methods (bus.Conn). Reconnecting is left to the caller.
//
// Delivered frames must be read (Recv, RecvBatch, Frames) as they come: once QueueSize of
// them wait unread, the client stops reading its socket, and acks stop with the frames, so
// an acknowledged call then waits until its Timeout. Meanwhile the broker, finding this
// client's queue full in turn, disconnects it as a slow receiver.
//
// The Sender, Topic and Payload of delivered frames share memory with the frames received
// with them (slabs of 64 KiB), so that receiving costs no allocation per frame: a receiver
// that keeps a few payloads for long should copy them.
type Client struct {
	name     string
	nc       *sock
	timeout  time.Duration
	maxFrame int

	wmu        sync.Mutex   // guards writes, buf and armed
	buf        []byte       // frames not yet written
	armed      bool         // the flusher will write buf
	queued     atomic.Int32 // frames in buf, for the flusher to see without the lock
	kick       chan struct{}
	flushDelay time.Duration
	writeBuf   int

	nextID  atomic.Uint32
	mu      sync.Mutex
	pending map[uint32]*waiter

	inbox inbox
	hook  atomic.Pointer[func(*bus.Frame) bool] // SetHook's
	done  chan struct{}
	err   error // why the client stopped; set before done closes
	once  sync.Once
}

// waiter is an acknowledged operation waiting for its result. Waiters and their timers are
// pooled: an acknowledged operation allocates nothing of its own.
type waiter struct {
	denied int       // 79s seen before the final code of a subscribe
	multi  bool      // a subscribe: 79s precede the final 01
	result chan byte // the final code; capacity 1
	timer  *time.Timer
	done   AckFunc // SendAsync's: called by the reader instead of waking a waiting sender
	ref    uint64  // SendAsync's, for done
}

var waiters = sync.Pool{New: func() any { return &waiter{result: make(chan byte, 1)} }}

var _ bus.Conn = (*Client)(nil)

// Dial connects to a broker at addr (a path ending in .sock, .socket or .ipc or starting
// with / is a UNIX socket, ws:// or wss:// a WebSocket, tls://host:port TCP over TLS, else
// host:port TCP) and registers as name. A refusal is returned as the bus error of its code
// (ErrBusy, ErrAccessDenied, …).
func Dial(ctx context.Context, addr, name string, opts DialOptions) (*Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = bus.DefaultQueueSize
	}
	if opts.FlushDelay == 0 {
		opts.FlushDelay = DefaultFlushDelay
	}
	if opts.WriteBuffer <= 0 {
		opts.WriteBuffer = DefaultDialWriteBuffer
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = DefaultMaxFrame
	}
	nc, err := dialNet(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	return newClient(nc, name, opts)
}

// confirmEnd bounds how late the client may notice that the broker hung up right after
// its last frame (see sock).
const confirmEnd = time.Millisecond

// newClient registers as name over nc, with opts' defaults filled in, and starts the client.
func newClient(nc net.Conn, name string, opts DialOptions) (*Client, error) {
	if err := clientHandshake(nc, name, opts.Timeout); err != nil {
		nc.Close()
		return nil, err
	}
	c := &Client{
		name:     name,
		nc:       newSock(nc),
		timeout:  opts.Timeout,
		maxFrame: opts.MaxFrame,
		pending:  make(map[uint32]*waiter),
		done:     make(chan struct{}),

		kick:       make(chan struct{}, 1),
		flushDelay: opts.FlushDelay,
		writeBuf:   opts.WriteBuffer,
	}
	c.inbox.init(opts.QueueSize)
	c.nc.confirm = confirmEnd
	go c.read()
	go c.ping()
	go c.flusher()
	return c, nil
}

// dialNet connects by the BUS/RT address convention (WIRE.md §1), with the rtbus extension
// tls://host:port for TCP over TLS.
func dialNet(ctx context.Context, addr string, opts DialOptions) (net.Conn, error) {
	scheme, hostport, tlsWanted := splitScheme(addr)
	tc := opts.TLS
	if tlsWanted && tc == nil {
		tc = &tls.Config{}
	}
	if scheme == "ws" || scheme == "wss" {
		ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
		var wo websocket.DialOptions
		if scheme == "wss" {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = tc
			wo.HTTPClient = &http.Client{Transport: tr}
		}
		wc, _, err := websocket.Dial(ctx, addr, &wo)
		if err != nil {
			return nil, err
		}
		wc.SetReadLimit(-1)
		return websocket.NetConn(context.Background(), wc, websocket.MessageBinary), nil
	}
	if scheme == "" && isUnixAddr(addr) {
		d := net.Dialer{Timeout: opts.Timeout}
		return d.DialContext(ctx, "unix", addr)
	}
	if tc != nil {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: opts.Timeout}, Config: tc}
		return d.DialContext(ctx, "tcp", hostport)
	}
	d := net.Dialer{Timeout: opts.Timeout}
	return d.DialContext(ctx, "tcp", hostport)
}

func clientHandshake(nc net.Conn, name string, timeout time.Duration) error {
	nc.SetDeadline(time.Now().Add(timeout))
	defer nc.SetDeadline(time.Time{})
	var b [3]byte
	if _, err := io.ReadFull(nc, b[:]); err != nil {
		return fmt.Errorf("transport: handshake: %w", err)
	}
	if b != [3]byte{greeting, protocolVersion, 0} {
		return fmt.Errorf("transport: handshake: unsupported greeting % x: %w", b, bus.ErrNotSupported)
	}
	if _, err := nc.Write(b[:]); err != nil {
		return err
	}
	hello := binary.LittleEndian.AppendUint16(nil, uint16(len(name)))
	hello = append(hello, name...)
	for _, step := range [][]byte{nil, hello} {
		if step != nil {
			if _, err := nc.Write(step); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(nc, b[:1]); err != nil {
			return fmt.Errorf("transport: register %q: %w", name, err)
		}
		if err := bus.ErrorFromCode(b[0]); err != nil {
			return fmt.Errorf("transport: register %q: %w", name, err)
		}
	}
	return nil
}

// Name returns the client's name.
func (c *Client) Name() string { return c.name }

// Err returns why the client stopped, or nil while it is connected.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// stop ends the client once, failing what waits on it with err.
func (c *Client) stop(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
		c.nc.Close()
		// SendAsync's callbacks learn it here; waiting senders see done themselves.
		var async []*waiter
		c.mu.Lock()
		for id, w := range c.pending {
			if w.done != nil {
				async = append(async, w)
				delete(c.pending, id)
			}
		}
		c.mu.Unlock()
		for _, w := range async {
			w.done(w.ref, err)
		}
	})
}

// Close writes what is still buffered and disconnects from the broker.
func (c *Client) Close() error {
	if c.Err() == nil {
		c.wmu.Lock()
		c.flushLocked()
		c.wmu.Unlock()
	}
	c.stop(bus.ErrClosed)
	return nil
}

func (c *Client) ack(id uint32, code byte) {
	c.mu.Lock()
	w := c.pending[id]
	if w != nil && w.multi && code == byte(bus.ErrAccessDenied) {
		w.denied++
		c.mu.Unlock()
		return
	}
	delete(c.pending, id)
	c.mu.Unlock()
	if w == nil {
		return
	}
	if f, ref := w.done, w.ref; f != nil {
		w.done = nil
		waiters.Put(w)
		f(ref, bus.ErrorFromCode(code))
		return
	}
	w.result <- code
}

func (c *Client) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	c.nc.writeWithin(c.timeout)
	_, err := c.nc.Write(c.buf)
	c.buf = c.buf[:0]
	c.queued.Store(0)
	if cap(c.buf) > 4*c.writeBuf {
		c.buf = nil
	}
	return err
}

// flusher writes QoS 0 frames FlushDelay after the first of them was queued.
func (c *Client) flusher() {
	for {
		select {
		case <-c.done:
			return
		case <-c.kick:
		}
		pause(c.flushDelay, func() (int, bool) {
			n := int(c.queued.Load())
			return n, n >= shortBatch
		})
		c.wmu.Lock()
		c.armed = false
		err := c.flushLocked()
		c.wmu.Unlock()
		if err != nil {
			c.stop(fmt.Errorf("transport: write: %v: %w", err, bus.ErrDisconnected))
			return
		}
	}
}

// ping keeps the broker from taking the client for dead (WIRE.md §7).
func (c *Client) ping() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var p [clientHeaderLen]byte
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.wmu.Lock()
			c.buf = append(c.buf, p[:]...)
			err := c.flushLocked()
			c.wmu.Unlock()
			if err != nil {
				c.stop(fmt.Errorf("transport: ping: %v: %w", err, bus.ErrDisconnected))
				return
			}
		}
	}
}

// op writes one frame, its body the texts joined by zero bytes and then, with withPayload,
// a zero byte and payload; at an acknowledging QoS it waits for the result.
func (c *Client) op(qos bus.QoS, op byte, texts []string, payload []byte, withPayload bool) error {
	return c.opAsync(qos, op, texts, payload, withPayload, nil, 0)
}

// opAsync is op; with done set, an acknowledged frame is not waited for: the reader passes
// done the result.
func (c *Client) opAsync(qos bus.QoS, op byte, texts []string, payload []byte, withPayload bool, done AckFunc, ref uint64) error {
	if err := c.Err(); err != nil {
		return err
	}
	var w *waiter
	id := c.nextID.Add(1)
	if qos.NeedsAck() {
		w = waiters.Get().(*waiter)
		w.denied, w.multi, w.done, w.ref = 0, op == opSubscribe, done, ref
		c.mu.Lock()
		c.pending[id] = w
		c.mu.Unlock()
	}
	n := len(texts) - 1
	for _, t := range texts {
		n += len(t)
	}
	if withPayload {
		n += 1 + len(payload)
	}
	c.wmu.Lock()
	c.buf = binary.LittleEndian.AppendUint32(c.buf, id)
	c.buf = append(c.buf, op|byte(qos)<<6)
	c.buf = binary.LittleEndian.AppendUint32(c.buf, uint32(n))
	for i, t := range texts {
		if i > 0 {
			c.buf = append(c.buf, 0)
		}
		c.buf = append(c.buf, t...)
	}
	if withPayload {
		c.buf = append(c.buf, 0)
		c.buf = append(c.buf, payload...)
	}
	c.queued.Add(1)
	var err error
	// QoS 0 frames wait a moment to share a write; anything realtime or acknowledged goes
	// at once, taking what waits with it.
	if qos != bus.QoSNo || c.flushDelay < 0 || len(c.buf) >= c.writeBuf {
		err = c.flushLocked()
	} else if !c.armed {
		c.armed = true
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	c.wmu.Unlock()
	if err != nil {
		c.stop(fmt.Errorf("transport: write: %v: %w", err, bus.ErrDisconnected))
	}
	if w == nil || done != nil {
		// An async waiter stays pending: its ack, or stop, settles it.
		return c.Err()
	}
	return c.await(id, w)
}

// await waits for the result of operation id.
func (c *Client) await(id uint32, w *waiter) error {
	if w.timer == nil {
		w.timer = time.NewTimer(c.timeout)
	} else {
		w.timer.Reset(c.timeout)
	}
	var code byte
	got := true
	select {
	case code = <-w.result:
	case <-c.done:
		got = false
	case <-w.timer.C:
		got = false
	}
	if !got {
		c.mu.Lock()
		_, waiting := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if !waiting {
			code, got = <-w.result, true // the reader took it meanwhile: its result is on the way
		}
	}
	w.timer.Stop() // no stale tick can follow (Go 1.23 timers), so the waiter can be reused
	denied := w.denied
	waiters.Put(w)
	switch {
	case !got && c.Err() != nil:
		return c.err
	case !got:
		return bus.ErrTimeout
	case denied > 0 && code == bus.CodeOK:
		return fmt.Errorf("transport: %d topic(s) refused: %w", denied, bus.ErrAccessDenied)
	}
	return bus.ErrorFromCode(code)
}

// Send sends payload to the client named target.
func (c *Client) Send(qos bus.QoS, target string, payload []byte) error {
	return c.op(qos, opMessage, []string{target}, payload, true)
}

// AckFunc receives the result of a frame sent with SendAsync: nil, or the bus error of the
// ack's code, or why the connection ended first. ref is the one given to SendAsync, so
// that one AckFunc serves every send without a closure (an allocation) for each.
type AckFunc = func(ref uint64, err error)

// SendAsync is Send without waiting for the ack: it returns once the frame is written (or
// buffered, at QoS 0), and payload may be reused at once. At an acknowledging QoS the
// reading goroutine calls done(ref, result) once the ack comes, or once the connection ends
// first; done must return quickly and must not wait for anything of this client. There is no
// timeout: an ack that never comes leaves done waiting for the connection to end. At QoS 0,
// or with a nil done, nothing is called.
func (c *Client) SendAsync(qos bus.QoS, target string, payload []byte, done AckFunc, ref uint64) error {
	if done == nil && qos.NeedsAck() {
		done = ignoreAck
	}
	return c.opAsync(qos, opMessage, []string{target}, payload, true, done, ref)
}

func ignoreAck(uint64, error) {}

// SetHook has the reading goroutine offer every delivered frame to hook before queueing it
// for Recv: a frame for which hook returns true is consumed and never returned by Recv. The
// frame's memory is as Recv's. Hook runs in the goroutine that also settles acks, so it must
// return quickly and must not wait for anything of this client. Set it before frames that
// it must see arrive; it cannot be removed.
func (c *Client) SetHook(hook func(*bus.Frame) bool) {
	c.hook.Store(&hook)
}

// Broadcast sends payload to every client whose name matches mask.
func (c *Client) Broadcast(qos bus.QoS, mask string, payload []byte) error {
	return c.op(qos, opBroadcast, []string{mask}, payload, true)
}

// Publish publishes payload on topic.
func (c *Client) Publish(qos bus.QoS, topic string, payload []byte) error {
	return c.op(qos, opPublish, []string{topic}, payload, true)
}

// PublishFor publishes to the subscribers of topic whose primary name is receiver.
func (c *Client) PublishFor(qos bus.QoS, topic, receiver string, payload []byte) error {
	return c.op(qos, opPublishFor, []string{topic, receiver}, payload, true)
}

// Subscribe subscribes to topic patterns. Refused topics make it return an error matching
// bus.ErrAccessDenied; the wire tells how many, not which.
func (c *Client) Subscribe(qos bus.QoS, topics ...string) error {
	return c.op(qos, opSubscribe, topics, nil, false)
}

// Unsubscribe removes subscriptions.
func (c *Client) Unsubscribe(qos bus.QoS, topics ...string) error {
	return c.op(qos, opUnsubscribe, topics, nil, false)
}

// Exclude excludes topics from this client's deliveries.
func (c *Client) Exclude(qos bus.QoS, topics ...string) error {
	return c.op(qos, opExclude, topics, nil, false)
}

// Unexclude removes exclusions.
func (c *Client) Unexclude(qos bus.QoS, topics ...string) error {
	return c.op(qos, opUnexclude, topics, nil, false)
}

// Recv returns the next delivered frame. Frames already received stay readable after the
// connection ends; then it returns why it ended (an error matching bus.ErrClosed). The
// frame points into a receive buffer shared with other frames: calling its Release once
// done lets the client reuse that buffer when all of them are released.
func (c *Client) Recv(ctx context.Context) (bus.Frame, error) {
	var one [1]bus.Frame
	got, err := c.recv(ctx, one[:0], 1)
	if len(got) == 0 {
		return bus.Frame{}, err
	}
	return got[0], nil
}

// RecvBatch appends to dst every delivered frame that is waiting, at most max (max < 1: no
// limit), waiting until there is at least one. Its errors are Recv's.
func (c *Client) RecvBatch(ctx context.Context, dst []bus.Frame, max int) ([]bus.Frame, error) {
	return c.recv(ctx, dst, max)
}

// Frames iterates over delivered frames until the client stops.
func (c *Client) Frames() iter.Seq[bus.Frame] {
	return func(yield func(bus.Frame) bool) {
		for {
			f, err := c.Recv(context.Background())
			if err != nil || !yield(f) {
				return
			}
		}
	}
}
