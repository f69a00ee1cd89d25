package sse

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Message is one publication as a stream sends it. A published Message is shared by every
// stream it goes to: neither the publisher nor the hub modifies its slices afterwards.
type Message struct {
	Tenant string
	User   string // non-empty: only streams of this user id get it (ephemeral per-user push)
	Seq    uint64 // publication id (the SSE id: field); 0 for ephemeral messages (no id: field)
	Event  string // SSE event: field (the event name)
	Record []byte // compact JSON of the whole event record (as json.Marshal gives it)
	Data   []byte // compact JSON of the event's data only (for ?format=data)
}

// HubOptions configure a Hub. The zero value is usable.
type HubOptions struct {
	QueueSize int           // messages queued per stream before it is dropped as slow; 0 = 1024
	KeepAlive time.Duration // idle time after which a keep-alive event is sent; 0 = 15 s
	Retry     time.Duration // the retry: hint on the first message; 0 = 3 s
}

// Hub fans publications out to the open streams of each tenant.
type Hub struct{}

// NewHub returns a Hub with no streams.
func NewHub(opts HubOptions) *Hub { return &Hub{} }

// Publish queues m on every stream of m.Tenant (only those of m.User if it is set). It never
// blocks on a stream: a stream whose queue is full is ended with ErrSlow instead.
func (h *Hub) Publish(m Message) {}

// Close ends every stream (Serve returns ErrClosed) and makes later Serve calls return
// ErrClosed at once.
func (h *Hub) Close() {}

// CloseUser ends the open streams of the user (revocation); Serve returns ErrUserClosed.
func (h *Hub) CloseUser(userID string) {}

// Streams is the number of open streams.
func (h *Hub) Streams() int { return 0 }

// StreamOptions describe one client stream.
type StreamOptions struct {
	Tenant, User string
	DataOnly     bool // ?format=data: send Message.Data instead of Message.Record
	// Backlog is called once after the stream is registered with the hub (so nothing published
	// meanwhile is lost) to send what precedes live delivery: the state, or everything after
	// Last-Event-ID. It calls send for each message in order and returns the last Seq it sent
	// (live messages with Seq <= that are skipped; ephemeral Seq 0 messages always pass).
	// nil: no backlog.
	Backlog func(send func(Message) error) (lastSeq uint64, err error)
}

// Serve writes headers (Content-Type: text/event-stream, Cache-Control: no-cache,
// X-Accel-Buffering: no), then the backlog, then live messages and keep-alives, each message
// one Write + Flush, until the client goes, ctx ends, the hub closes, or the stream is too slow.
// It returns ctx.Err() when ctx ends, ErrSlow, ErrClosed, ErrUserClosed, the Backlog's error,
// or the write error when the client went away.
func (h *Hub) Serve(ctx context.Context, w http.ResponseWriter, opts StreamOptions) error {
	return errors.New("sse: not implemented")
}
