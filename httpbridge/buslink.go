package httpbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge/internal/sse"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
	"github.com/rtbus/rtbus/rpc"
)

// BusClientName is the name of the bridge's in-process bus client. Names starting with "."
// are reserved for in-process clients, so no socket client can take it.
const BusClientName = ".httpbridge"

// TopicPrefix starts every topic of the bridge. The topics are, with <tenant> and <event>
// escaped by EscapeTopicLevel:
//
//	rtbus/http/<tenant>/events/<event>   the bridge publishes each publication: the event record as JSON
//	rtbus/http/<tenant>/push             a bus client pushes {"event","data"} to every stream of the tenant
//	rtbus/http/<tenant>/push/<user id>   … to the streams of one user of the tenant
//
// Plugins insert events by calling the RPC method "insert" of the bridge's bus client
// (BusClientName): see InsertMethod.
const TopicPrefix = "rtbus/http/"

// EscapeTopicLevel makes a tenant id or event name one topic level: '%', '/', '+' and '#'
// become %25, %2F, %2B and %23; everything else is kept.
func EscapeTopicLevel(s string) string {
	if !strings.ContainsAny(s, "%/+#") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%', '/', '+', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// EventTopic is the topic on which the bridge publishes the events named event of tenant.
func EventTopic(tenant, event string) string {
	return TopicPrefix + EscapeTopicLevel(tenant) + "/events/" + EscapeTopicLevel(event)
}

// PushMethod is the RPC method of the bridge's bus client that pushes an ephemeral message,
// as POST /v1/messages of the internal API and the push topics do. Its params are a
// MessagePack map:
//
//	{"tenant_id": "acme", "user"?: "ann" or a user id, "event": "hello", "data": any}
//
// The result is {"delivered": N}, the number of streams that received it.
const PushMethod = "push"

// InsertMethod is the RPC method (WIRE.md §8) of the bridge's bus client that inserts an
// event. Its params are a MessagePack map with the keys of the POST /insert body, where
// "tenant_id" is required and "user_id" may name the user of that tenant the event is
// inserted for:
//
//	{"tenant_id": "acme", "event": "build", "data": {"ok": true}, "collection_id"?: str, "timestamp"?: int, "user_id"?: str}
//
// The result is {"event": record}, the stored record as a MessagePack map; invalid params
// fail with rpc.CodeInvalidParams and a message naming the problem. The call returns once the
// event is durable, as POST /insert does.
const InsertMethod = "insert"

type busLink struct {
	s       *Server
	c       *bus.Client
	rpc     *rpc.Client
	started bool // set before the server is shared; read at shutdown
}

func newBusLink(s *Server, b *bus.Broker) (*busLink, error) {
	// Blocking senders: a burst of pushes or inserts waits for the bridge rather than
	// dropping its client.
	c, err := b.RegisterClient(BusClientName, bus.WithClientQueue(4096), bus.WithBlockingSenders(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("httpbridge: bus client: %w", err)
	}
	err = c.Subscribe(bus.QoSProcessed, TopicPrefix+"+/push", TopicPrefix+"+/push/+")
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("httpbridge: bus subscribe: %w", err)
	}
	return &busLink{s: s, c: c}, nil
}

func (l *busLink) start() {
	l.started = true
	l.rpc = rpc.New(l.c, rpc.Options{})
	l.rpc.HandleFrame(l.frame)
	l.rpc.Handle(InsertMethod, l.insert)
	l.rpc.Handle(PushMethod, l.pushRPC)
}

func (l *busLink) close() {
	if l == nil {
		return
	}
	l.c.Close()
	if !l.started {
		return
	}
	select {
	case <-l.rpc.Done():
	case <-time.After(5 * time.Second):
	}
}

// publish puts a publication on the bus; record is shared with the streams (read-only).
func (l *busLink) publish(e *store.Event, record []byte) {
	if l == nil {
		return
	}
	if err := l.c.Publish(bus.QoSNo, EventTopic(e.TenantID, e.Event), record); err != nil && !errors.Is(err, bus.ErrClosed) {
		l.s.cfg.Logger.Warn("httpbridge: bus publish", "err", err)
	}
}

// frame handles a publication on a push topic.
func (l *busLink) frame(f bus.Frame) {
	if f.Kind != bus.KindPublish {
		return
	}
	levels := strings.Split(strings.TrimPrefix(f.Topic, TopicPrefix), "/")
	if len(levels) < 2 || levels[1] != "push" || len(levels) > 3 {
		return
	}
	tenant, err := url.PathUnescape(levels[0])
	if err != nil || checkTenant(tenant) != nil {
		l.s.cfg.Logger.Warn("httpbridge: bus push for a malformed tenant", "topic", f.Topic)
		return
	}
	user := ""
	if len(levels) == 3 {
		if user, err = url.PathUnescape(levels[2]); err != nil || user == "" {
			l.s.cfg.Logger.Warn("httpbridge: bus push for a malformed user id", "topic", f.Topic)
			return
		}
	}
	var p struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(f.Payload, &p); err != nil {
		l.s.cfg.Logger.Warn("httpbridge: bus push refused", "topic", f.Topic, "sender", f.Sender, "err", "payload is not a JSON object {\"event\",\"data\"}")
		return
	}
	if _, err := l.s.push(tenant, user, p.Event, p.Data, false); err != nil {
		l.s.cfg.Logger.Warn("httpbridge: bus push refused", "topic", f.Topic, "sender", f.Sender, "err", err)
	}
}

// pushRPC answers PushMethod.
func (l *busLink) pushRPC(_ context.Context, r rpc.Request) ([]byte, error) {
	var p struct {
		TenantID string `msgpack:"tenant_id"`
		User     string `msgpack:"user"`
		Event    string `msgpack:"event"`
		Data     any    `msgpack:"data"`
	}
	if err := rpc.Unmarshal(r.Params, &p); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "params must be a map {tenant_id, user?, event, data}: %v", err)
	}
	data, err := json.Marshal(p.Data)
	if err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "data cannot be sent as JSON: %v", err)
	}
	n, err := l.s.pushTo(p.TenantID, p.User, p.Event, data)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.code < 500 {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s", ae.msg)
		}
		return nil, rpc.Errorf(rpc.CodeInternal, "push failed")
	}
	return rpc.Marshal(map[string]int{"delivered": n})
}

// insert answers InsertMethod.
func (l *busLink) insert(ctx context.Context, r rpc.Request) ([]byte, error) {
	var p map[string]any
	if err := rpc.Unmarshal(r.Params, &p); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "params must be a map")
	}
	var req insertRequest
	text := func(key string, dst *string) error {
		switch v := p[key].(type) {
		case nil:
		case string:
			*dst = v
		default:
			return rpc.Errorf(rpc.CodeInvalidParams, "%s must be a string", key)
		}
		return nil
	}
	for key, dst := range map[string]*string{"tenant_id": &req.TenantID, "event": &req.Event, "collection_id": &req.CollectionID, "user_id": &req.UserID} {
		if err := text(key, dst); err != nil {
			return nil, err
		}
	}
	if req.TenantID == "" {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "tenant_id is required")
	}
	if err := checkTenant(req.TenantID); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
	}
	if ts, ok := p["timestamp"]; ok && ts != nil {
		n, ok := integer(ts)
		if !ok {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "timestamp must be an integer (Unix seconds)")
		}
		req.Timestamp = timestamp(strconv.FormatInt(n, 10))
	}
	data, ok := p["data"]
	if !ok {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "data is required (any value)")
	}
	var err error
	if req.Data, err = json.Marshal(data); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "data cannot be stored as JSON: %v", err)
	}
	if req.UserID != "" {
		if u, err := l.s.acct.UserByID(req.UserID); err != nil || u.TenantID != req.TenantID {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "user_id is not a user of tenant_id")
		}
	}
	e, err := l.s.insertEvent(ctx, req.TenantID, req.UserID, "", req)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.code < 500 {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s", ae.msg)
		}
		l.s.cfg.Logger.Error("httpbridge: rpc insert", "err", err)
		return nil, rpc.Errorf(rpc.CodeInternal, "insert failed")
	}
	var stored any // the data as stored (a []byte given went in as base64 text)
	d := json.NewDecoder(bytes.NewReader(e.Data))
	d.UseNumber()
	if err := d.Decode(&stored); err != nil {
		return nil, rpc.Errorf(rpc.CodeInternal, "stored data: %v", err)
	}
	type record struct { // the fields of the JSON record, in its order
		ID           string `msgpack:"id"`
		Event        string `msgpack:"event"`
		TenantID     string `msgpack:"tenant_id"`
		CollectionID string `msgpack:"collection_id"`
		UserID       string `msgpack:"user_id"`
		Timestamp    int64  `msgpack:"timestamp"`
		Published    bool   `msgpack:"published"`
		Cancelled    bool   `msgpack:"cancelled"`
		Data         any    `msgpack:"data"`
		Seq          uint64 `msgpack:"seq"`
	}
	return rpc.Marshal(struct {
		Event record `msgpack:"event"`
	}{record{e.ID, e.Event, e.TenantID, e.CollectionID, e.UserID, e.Timestamp, e.Published, e.Cancelled, fromJSON(stored), e.Seq}})
}

// integer accepts the integer types a MessagePack decoder gives, and floats without a
// fraction (some encoders write every number as a float).
func integer(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), n <= math.MaxInt64
	case float64:
		return int64(n), n == math.Trunc(n) && math.Abs(n) < 1<<62
	case float32:
		return int64(n), float64(n) == math.Trunc(float64(n)) && math.Abs(float64(n)) < 1<<62
	}
	return 0, false
}

// fromJSON turns JSON numbers decoded with UseNumber into integers where they are integers,
// so that a MessagePack reply keeps them as integers.
func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSON(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fromJSON(x[k])
		}
	}
	return v
}

// onPublish is the store's publication callback. It runs in the store's commit pipeline, so
// it only queues the event (in publication order) for dispatch.
func (s *Server) onPublish(e store.Event) { s.pubs <- e }

// dispatch hands each publication to the streams, then to the bus, in publication order. A
// stream that connects meanwhile loses nothing: its backlog is read from the store after it
// joined the hub and covers every event already published; live copies of those are skipped
// by their sequence. The publications waiting when it gets to them (those of one sync of the
// store) go to the hub together, so that a stream writes them in one write.
func (s *Server) dispatch() {
	defer close(s.pubsDone)
	var es []store.Event
	var ms []sse.Message
	for e := range s.pubs {
		es = append(es[:0], e)
	gather:
		for len(es) < maxDispatch {
			select {
			case e, ok := <-s.pubs:
				if !ok {
					break gather
				}
				es = append(es, e)
			default:
				break gather
			}
		}
		ms = ms[:0]
		for i := range es {
			if es[i].Seq <= s.quietSeq {
				continue // replayed while this node caught up with the cluster's log, before serving
			}
			m := s.message(es[i])
			if s.isPublic(es[i].TenantID) {
				m.Anon = anonRecord(es[i])
			}
			ms = append(ms, m)
			es[len(ms)-1] = es[i]
		}
		s.hub.PublishBatch(ms)
		for i := range ms {
			s.link.publish(&es[i], ms[i].Record)
			s.metrics.publications.Inc()
		}
		clear(es)
		clear(ms)
	}
}

// maxDispatch bounds the publications dispatch hands to the hub together.
const maxDispatch = 64
