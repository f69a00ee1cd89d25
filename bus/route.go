package bus

import "sync"

// route is the scratch space of one publication or broadcast, pooled so that routing a frame
// allocates nothing once the pool is warm.
type route struct {
	sets     []*clientSet
	exsets   []*clientSet
	clients  []*Client
	excluded map[*Client]struct{}
	seen     map[*Client]struct{}
	wait     []*Client // full queues whose senders block: retried after the lock is released
	overflow []*Client // slow receivers to disconnect after the lock is released
}

var routePool = sync.Pool{New: func() any {
	return &route{excluded: make(map[*Client]struct{}), seen: make(map[*Client]struct{})}
}}

func (r *route) release() {
	if len(r.exsets) > 0 {
		clear(r.excluded)
	}
	if len(r.seen) > 0 {
		clear(r.seen)
	}
	r.sets, r.exsets, r.clients = reset(r.sets), reset(r.exsets), reset(r.clients)
	r.wait, r.overflow = reset(r.wait), reset(r.overflow)
	routePool.Put(r)
}

// reset empties s for reuse, dropping the pointers it held so that they can be collected.
func reset[T any](s []T) []T {
	clear(s)
	return s[:0]
}

// deliverLocked queues f to c while the broker's read lock is held; what cannot be settled
// without waiting or without the write lock is left to finish.
func (r *route) deliverLocked(c *Client, f *Frame, size int) {
	if c.q.push(f, size) == pushFull {
		if c.q.block > 0 {
			r.wait = append(r.wait, c)
		} else {
			r.overflow = append(r.overflow, c)
		}
	}
}

// finish runs after the broker's lock is released: it waits for room in blocking queues
// (unless wait is false) and disconnects the receivers that overflowed.
func (b *Broker) finish(r *route, f *Frame, size int, wait bool) {
	if wait {
		for _, c := range r.wait {
			c.q.pushWait(f, size)
		}
	}
	for _, c := range r.overflow {
		b.overflowed(c)
	}
}

func (b *Broker) overflowed(c *Client) {
	b.log.Warn("bus: client disconnected: queue full", "client", c.name, "queue", c.q.limit)
	b.disconnect(c, ErrQueueOverflow, true)
}

// wireSize is the body length of a delivered frame on the wire (WIRE.md §4), which is what
// the statistics count.
func wireSize(f *Frame) int {
	n := len(f.Sender) + 1 + len(f.Payload)
	if f.Kind == KindPublish {
		n += len(f.Topic) + 1
	}
	return n
}

// send routes a one-to-one frame.
func (b *Broker) send(target string, f *Frame) error {
	b.mu.RLock()
	c := b.clients[target]
	b.mu.RUnlock()
	if c == nil {
		return ErrNotRegistered
	}
	if c.q.discard { // .broker, which nobody serves
		b.unserved.Do(func() {
			b.log.Warn("bus: a message to " + BrokerName + " was refused: the host program did not call rpc.ServeBroker (or bus.ServeSelf)")
		})
		return errUnserved
	}
	size := wireSize(f)
	if c.direct != nil {
		c.q.count(size)
		c.direct(*f)
		return nil
	}
	switch c.q.push(f, size) {
	case pushOK:
		return nil
	case pushClosed:
		return ErrNotRegistered
	}
	if c.q.block > 0 {
		switch c.q.pushWait(f, size) {
		case pushOK:
			return nil
		case pushClosed:
			return ErrNotRegistered
		}
		return ErrNotDelivered
	}
	b.overflowed(c)
	return ErrNotDelivered
}

// publish routes a publication from sender; a non-empty receiver limits it to the subscribers
// whose primary name is receiver. The broker's own publications pass wait=false: an
// announcement skips a full blocking queue rather than stall a registration or a shutdown.
func (b *Broker) publish(sender, topic, receiver string, payload []byte, realtime, wait bool, ref *Ref) {
	f := Frame{Kind: KindPublish, Sender: sender, Topic: topic, Payload: payload, Realtime: realtime, ref: ref}
	size := wireSize(&f)
	r := routePool.Get().(*route)
	b.mu.RLock()
	b.subs.collect(topic, false, &r.sets)
	if len(r.sets) > 0 && b.nexcl > 0 {
		b.excl.collect(topic, false, &r.exsets)
		for _, s := range r.exsets {
			for _, c := range s.list {
				r.excluded[c] = struct{}{}
			}
		}
	}
	if len(r.sets) == 1 && len(r.excluded) == 0 && receiver == "" {
		// The common case: one matching pattern, whose subscribers are distinct already.
		for _, c := range r.sets[0].list {
			r.deliverLocked(c, &f, size)
		}
	} else {
		dedup := len(r.sets) > 1
		for _, s := range r.sets {
			for _, c := range s.list {
				if receiver != "" && PrimaryName(c.name) != receiver {
					continue
				}
				if _, ok := r.excluded[c]; ok {
					continue
				}
				if dedup {
					if _, ok := r.seen[c]; ok {
						continue
					}
					r.seen[c] = struct{}{}
				}
				r.deliverLocked(c, &f, size)
			}
		}
	}
	b.mu.RUnlock()
	b.finish(r, &f, size, wait)
	r.release()
}

// broadcast routes a broadcast to every client whose name matches mask.
func (b *Broker) broadcast(sender, mask string, payload []byte, realtime bool, ref *Ref) {
	f := Frame{Kind: KindBroadcast, Sender: sender, Payload: payload, Realtime: realtime, ref: ref}
	size := wireSize(&f)
	r := routePool.Get().(*route)
	b.mu.RLock()
	b.names.collect(mask, &r.clients)
	for _, c := range r.clients {
		r.deliverLocked(c, &f, size)
	}
	b.mu.RUnlock()
	b.finish(r, &f, size, true)
	r.release()
}
