package bus

import (
	"log/slog"
	"time"

	"github.com/rtbus/rtbus/aaa"
)

// DefaultQueueSize is the default bound of a client's outgoing queue, in frames (as BUS/RT).
const DefaultQueueSize = 8192

// An Option configures a Broker.
type Option func(*Broker)

// WithQueueSize sets the default queue bound of every client, in frames (default
// DefaultQueueSize). Values below 1 are ignored.
func WithQueueSize(n int) Option {
	return func(b *Broker) {
		if n > 0 {
			b.queueSize = n
		}
	}
}

// WithPolicy sets the access policy applied to every client that registers without its own
// (see WithClientPolicy). The default, nil, allows everything. Names starting with "." belong
// to the broker and are never checked.
func WithPolicy(m *aaa.Map) Option {
	return func(b *Broker) { b.policy = m }
}

// WithLogger sets where the broker reports disconnected slow receivers and similar events
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(b *Broker) {
		if l != nil {
			b.log = l
		}
	}
}

// A ClientOption configures one client at registration.
type ClientOption func(*clientConfig)

type clientConfig struct {
	queueSize int
	block     time.Duration
	info      ConnInfo
	policy    *aaa.Map
	hasPolicy bool
}

// WithClientQueue sets this client's queue bound, in frames (default: the broker's).
func WithClientQueue(n int) ClientOption {
	return func(c *clientConfig) {
		if n > 0 {
			c.queueSize = n
		}
	}
}

// WithBlockingSenders makes senders wait up to timeout for room in this client's full queue
// instead of disconnecting it, as BUS/RT does for its internal clients. A sender that still
// finds no room gets ErrNotDelivered (one-to-one) or silently skips this client (publish and
// broadcast). Meant for in-process clients that must not lose frames; a slow one slows its
// senders down.
func WithBlockingSenders(timeout time.Duration) ClientOption {
	return func(c *clientConfig) { c.block = timeout }
}

// WithConnInfo tells the broker where the client connects from; transports use it.
func WithConnInfo(info ConnInfo) ClientOption {
	return func(c *clientConfig) { c.info = info }
}

// WithClientPolicy checks this client against m instead of the broker's policy; a nil m
// allows everything. Each socket listener passes its own map this way.
func WithClientPolicy(m *aaa.Map) ClientOption {
	return func(c *clientConfig) { c.policy, c.hasPolicy = m, true }
}
