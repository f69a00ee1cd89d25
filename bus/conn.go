package bus

import (
	"context"
	"iter"
	"net/netip"
)

// Conn is a bus client as its peers see it. An in-process *Client satisfies it, and so does a
// socket client of package transport, so code written against Conn runs in-process or remote
// unchanged.
//
// Operations with a QoS that asks for an acknowledgement (QoSProcessed, QoSRealtimeProcessed)
// return the routing result: nil, or an Error such as ErrNotRegistered. Operations with the
// other QoS levels return nil once the frame is handed on, whatever its fate.
type Conn interface {
	// Name returns the client's full name.
	Name() string
	// Send sends payload to the one client named target (WIRE.md op 0x12).
	Send(qos QoS, target string, payload []byte) error
	// Broadcast sends payload to every client whose name matches mask (op 0x13).
	Broadcast(qos QoS, mask string, payload []byte) error
	// Publish sends payload to every subscriber of topic (op 0x01).
	Publish(qos QoS, topic string, payload []byte) error
	// PublishFor publishes to the subscribers of topic whose primary name is receiver (op 0x06).
	PublishFor(qos QoS, topic, receiver string, payload []byte) error
	// Subscribe adds topic subscriptions. Topics the access policy refuses are reported as an
	// error matching ErrAccessDenied (in-process, a *DeniedError naming them; the wire tells
	// a socket client only how many); the others are subscribed.
	Subscribe(qos QoS, topics ...string) error
	// Unsubscribe removes topic subscriptions.
	Unsubscribe(qos QoS, topics ...string) error
	// Exclude stops publications on matching topics from reaching this client even where a
	// subscription matches them.
	Exclude(qos QoS, topics ...string) error
	// Unexclude removes exclusions.
	Unexclude(qos QoS, topics ...string) error
	// Recv returns the next delivered frame, waiting until one arrives, ctx ends, or the
	// client stops (an error matching ErrClosed).
	Recv(ctx context.Context) (Frame, error)
	// Frames iterates over delivered frames until the client stops.
	Frames() iter.Seq[Frame]
	// Close unregisters the client. It is safe to call more than once.
	Close() error
}

var _ Conn = (*Client)(nil)

// Client kinds reported by ConnInfo and ClientInfo (WIRE.md §9).
const (
	KindInternal  = "internal"
	KindLocalIPC  = "local_ipc"
	KindTCP       = "tcp"
	KindWebSocket = "websocket"
)

// ConnInfo describes where a client comes from. The zero ConnInfo is an in-process client.
// Transports pass it with WithConnInfo when they register a remote client.
type ConnInfo struct {
	Kind   string         // one of the Kind constants; "" means KindInternal
	Source netip.AddrPort // the peer address of a TCP or WebSocket client; checked against the policy's hosts
	Port   string         // the listener's address; "" for in-process clients
}

func (i ConnInfo) internal() bool { return i.Kind == "" || i.Kind == KindInternal }
