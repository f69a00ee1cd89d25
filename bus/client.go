package bus

import (
	"context"
	"fmt"
	"iter"
	"sync/atomic"

	"github.com/rtbus/rtbus/aaa"
)

// Client is an in-process bus client, returned by Broker.RegisterClient. Its methods are safe
// for concurrent use; frames from one sender to one receiver keep their order.
type Client struct {
	b      *Broker
	name   string
	rules  *aaa.Rules // copied at registration; nil allows everything
	info   ConnInfo
	parent *Client // the primary of a secondary client
	q      queue
	hold   *Ref        // see Hold; used by the routing goroutine only
	direct func(Frame) // see Broker.ServeSelfFunc; set before registration

	rFrames atomic.Uint64 // frames received from this client
	// sent counts the one-to-one, publish and broadcast frames received from this client
	// (indexed by sentP2P, sentPublish, sentBroadcast).
	sent   [3]atomic.Uint64
	rBytes atomic.Uint64 // their wire body bytes

	// Guarded by the broker's mu.
	subs        map[string]struct{}
	excl        map[string]struct{}
	secondaries map[*Client]struct{}
}

// Name returns the client's full name.
func (c *Client) Name() string { return c.name }

// Err returns why the client stopped (an error matching ErrClosed), or nil while it is
// registered.
func (c *Client) Err() error { return c.q.err() }

// Done returns a channel that is closed when the client stops.
func (c *Client) Done() <-chan struct{} { return c.q.done }

// Close unregisters the client and its secondaries; frames not yet read are dropped.
func (c *Client) Close() error {
	c.b.disconnect(c, ErrClosed, true)
	return nil
}

// Recv returns the next delivered frame. After the client stops it returns the frames still
// queued, if the stop kept them (Broker.Close does), and then the reason, which matches
// ErrClosed. Frames are meant for one reading goroutine: concurrent readers each get
// different frames, in no defined order.
func (c *Client) Recv(ctx context.Context) (Frame, error) {
	return c.q.recv(ctx)
}

// TakeBatch appends to dst, at most max (max < 1: no limit), the frames waiting now, without
// waiting for any. With Wait, it lets a socket transport take and write batches under a
// lock of its own, from its writer or, when that is idle, from the goroutine that just
// routed a frame.
func (c *Client) TakeBatch(dst []Frame, max int) []Frame { return c.q.take(dst, max) }

// Wait returns once a frame is waiting for c, taking none, or once c has stopped (then
// TakeBatch returns what the stop kept readable, and Recv the reason), or with ctx's error.
func (c *Client) Wait(ctx context.Context) error { return c.q.wait(ctx) }

// RecvBatch appends to dst every frame that is waiting, at most max (max < 1: no limit),
// waiting until there is at least one. A writer that turns frames into one system call per
// batch uses it in place of Recv. Its errors are Recv's.
func (c *Client) RecvBatch(ctx context.Context, dst []Frame, max int) ([]Frame, error) {
	return c.q.recvBatch(ctx, dst, max)
}

// Frames iterates over delivered frames until the client stops; Err tells why it stopped.
func (c *Client) Frames() iter.Seq[Frame] {
	return func(yield func(Frame) bool) {
		for {
			f, err := c.q.recv(context.Background())
			if err != nil || !yield(f) {
				return
			}
		}
	}
}

// PushAck queues an acknowledgement (WIRE.md §5) in c's own stream of delivered frames, so
// that it reaches the client after every frame the acknowledged operation routed to it: a
// socket transport calls it after each operation that wants an ack. A client whose queue is
// full is disconnected as a slow receiver, like for any other frame.
func (c *Client) PushAck(opID uint32, code byte, realtime bool) error {
	f := Frame{Kind: KindAck, Realtime: realtime, code: code, opID: opID}
	switch c.q.push(&f, ackWireSize) {
	case pushOK:
		return nil
	case pushFull:
		c.b.overflowed(c)
	}
	return c.q.err()
}

// CountAck counts in c's statistics an ack that a transport wrote to its client itself,
// rather than queueing it with PushAck.
func (c *Client) CountAck() { c.q.count(ackWireSize) }

// ackWireSize is the size of an ack on the wire, counted in the statistics: a header alone.
const ackWireSize = 6

// ack turns a routing result into what the caller sees at its QoS.
func ack(qos QoS, err error) error {
	if qos.NeedsAck() {
		return err
	}
	return nil
}

// begin checks that c may still operate and counts the operation as received from it.
func (c *Client) begin(bodySize int) error {
	if c.q.closed.Load() {
		return c.q.err()
	}
	c.rFrames.Add(1)
	c.rBytes.Add(uint64(bodySize))
	return nil
}

// Send sends payload to the client named target. With an acknowledging QoS it returns
// ErrNotRegistered, ErrNotDelivered (the target's queue was full: the target is disconnected)
// or ErrAccessDenied.
func (c *Client) Send(qos QoS, target string, payload []byte) error {
	// The target needs no validation: names are checked at registration, so a malformed
	// target is simply not registered.
	if err := c.begin(len(target) + 1 + len(payload)); err != nil {
		return err
	}
	c.sent[sentP2P].Add(1)
	if !c.rules.AllowP2P(target) {
		return ack(qos, ErrAccessDenied)
	}
	f := Frame{Kind: KindMessage, Sender: c.name, Payload: payload, Realtime: qos.Realtime(), ref: c.hold}
	return ack(qos, c.b.send(target, &f))
}

// Broadcast sends payload to every client whose full name matches mask ("?" one level, "*"
// one or more), the sender included when it matches.
func (c *Client) Broadcast(qos QoS, mask string, payload []byte) error {
	// Like a one-to-one target, a malformed mask matches no name and needs no check.
	if err := c.begin(len(mask) + 1 + len(payload)); err != nil {
		return err
	}
	c.sent[sentBroadcast].Add(1)
	if !c.rules.AllowBroadcast(mask) {
		return ack(qos, ErrAccessDenied)
	}
	c.b.broadcast(c.name, mask, payload, qos.Realtime(), c.hold)
	return nil
}

// Publish sends payload to every client subscribed to a pattern matching topic, once per
// client however many of its subscriptions match, the publisher included.
func (c *Client) Publish(qos QoS, topic string, payload []byte) error {
	if !validText(topic) {
		return fmt.Errorf("bus: publish: bad topic %q: %w", topic, ErrBadData)
	}
	if err := c.begin(len(topic) + 1 + len(payload)); err != nil {
		return err
	}
	c.sent[sentPublish].Add(1)
	if !c.rules.AllowPublish(topic) {
		return ack(qos, ErrAccessDenied)
	}
	c.b.publish(c.name, topic, "", payload, qos.Realtime(), true, c.hold)
	return nil
}

// PublishFor publishes to the subscribers of topic whose primary name is receiver.
func (c *Client) PublishFor(qos QoS, topic, receiver string, payload []byte) error {
	if !validText(topic) {
		return fmt.Errorf("bus: publish: bad topic %q: %w", topic, ErrBadData)
	}
	if err := c.begin(len(topic) + 1 + len(receiver) + 1 + len(payload)); err != nil {
		return err
	}
	c.sent[sentPublish].Add(1)
	if !c.rules.AllowPublish(topic) {
		return ack(qos, ErrAccessDenied)
	}
	if receiver == "" {
		return nil // no client has an empty primary name
	}
	c.b.publish(c.name, topic, receiver, payload, qos.Realtime(), true, c.hold)
	return nil
}

// Subscribe subscribes to topic patterns ("+" one level, "#" one or more). Subscribing twice to
// one pattern is one subscription. With an acknowledging QoS, topics refused by the access
// policy are reported as a *DeniedError (matching ErrAccessDenied); the rest are subscribed.
func (c *Client) Subscribe(qos QoS, topics ...string) error {
	return c.topicOp(qos, "subscribe", topics, opSubscribe)
}

// Unsubscribe removes subscriptions; patterns not subscribed are ignored.
func (c *Client) Unsubscribe(qos QoS, topics ...string) error {
	return c.topicOp(qos, "unsubscribe", topics, opUnsubscribe)
}

// Exclude makes publications on topics matching the patterns skip this client even where a
// subscription matches them.
func (c *Client) Exclude(qos QoS, topics ...string) error {
	return c.topicOp(qos, "exclude", topics, opExclude)
}

// Unexclude removes exclusions.
func (c *Client) Unexclude(qos QoS, topics ...string) error {
	return c.topicOp(qos, "unexclude", topics, opUnexclude)
}

const (
	opSubscribe = iota
	opUnsubscribe
	opExclude
	opUnexclude
)

func (c *Client) topicOp(qos QoS, name string, topics []string, op int) error {
	size := 0
	for _, t := range topics {
		if !validText(t) {
			return fmt.Errorf("bus: %s: bad topic %q: %w", name, t, ErrBadData)
		}
		size += len(t) + 1
	}
	if size > 0 {
		size-- // no trailing separator on the wire
	}
	if err := c.begin(size); err != nil {
		return err
	}
	var denied []string
	if op == opSubscribe {
		// One pass; the list of allowed topics is only built once a topic is refused.
		var allowed []string
		for i, t := range topics {
			switch {
			case !c.rules.AllowSubscribe(t):
				if denied == nil {
					allowed = append(allowed, topics[:i]...)
				}
				denied = append(denied, t)
			case denied != nil:
				allowed = append(allowed, t)
			}
		}
		if denied != nil {
			topics = allowed
		}
	}
	b := c.b
	b.mu.Lock()
	if b.clients[c.name] != c {
		b.mu.Unlock()
		if err := c.q.err(); err != nil {
			return err
		}
		return ErrClosed
	}
	for _, t := range topics {
		key := subscriptionKey(t)
		switch op {
		case opSubscribe:
			if _, ok := c.subs[key]; !ok {
				c.subs[key] = struct{}{}
				b.subs.add(key, c)
			}
		case opUnsubscribe:
			if _, ok := c.subs[key]; ok {
				delete(c.subs, key)
				b.subs.remove(key, c)
			}
		case opExclude:
			if c.excl == nil {
				c.excl = make(map[string]struct{})
			}
			if _, ok := c.excl[key]; !ok {
				c.excl[key] = struct{}{}
				b.excl.add(key, c)
				b.nexcl++
			}
		case opUnexclude:
			if _, ok := c.excl[key]; ok {
				delete(c.excl, key)
				b.excl.remove(key, c)
				b.nexcl--
			}
		}
	}
	b.mu.Unlock()
	if denied != nil {
		return ack(qos, &DeniedError{Topics: denied})
	}
	return nil
}
