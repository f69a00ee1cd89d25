package httpbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge/internal/sse"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
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
//	rtbus/http/<tenant>/insert           a bus client inserts an event: the body of POST /insert
//	                                     (+ optional "user_id"); the bridge answers the sender
//	                                     one-to-one with {"event": record} or {"error": "…"}
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

type busLink struct {
	s       *Server
	c       *bus.Client
	done    chan struct{}
	started bool // set before the server is shared; read at shutdown
}

func newBusLink(s *Server, b *bus.Broker) (*busLink, error) {
	// Blocking senders: a burst of pushes or inserts waits for the bridge rather than
	// dropping its client.
	c, err := b.RegisterClient(BusClientName, bus.WithClientQueue(4096), bus.WithBlockingSenders(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("httpbridge: bus client: %w", err)
	}
	err = c.Subscribe(bus.QoSProcessed, TopicPrefix+"+/push", TopicPrefix+"+/push/+", TopicPrefix+"+/insert")
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("httpbridge: bus subscribe: %w", err)
	}
	return &busLink{s: s, c: c, done: make(chan struct{})}, nil
}

func (l *busLink) start() {
	l.started = true
	go l.loop()
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
	case <-l.done:
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

func (l *busLink) loop() {
	defer close(l.done)
	for f := range l.c.Frames() {
		if f.Kind != bus.KindPublish {
			continue
		}
		levels := strings.Split(strings.TrimPrefix(f.Topic, TopicPrefix), "/")
		if len(levels) < 2 {
			continue
		}
		tenant, err := url.PathUnescape(levels[0])
		if err != nil || checkTenant(tenant) != nil {
			l.s.cfg.Logger.Warn("httpbridge: bus message for a malformed tenant", "topic", f.Topic)
			continue
		}
		switch {
		case levels[1] == "push" && len(levels) <= 3:
			user := ""
			if len(levels) == 3 {
				if user, err = url.PathUnescape(levels[2]); err != nil || user == "" {
					l.s.cfg.Logger.Warn("httpbridge: bus push for a malformed user id", "topic", f.Topic)
					continue
				}
			}
			if err := l.push(tenant, user, f.Payload); err != nil {
				l.s.cfg.Logger.Warn("httpbridge: bus push refused", "topic", f.Topic, "sender", f.Sender, "err", err)
			}
		case levels[1] == "insert" && len(levels) == 2:
			l.insert(tenant, f)
		}
	}
}

// push hands an ephemeral message to the tenant's streams (or one user's): it is not stored,
// has no publication id, and is not replayed on resume.
func (l *busLink) push(tenant, user string, payload []byte) error {
	var p struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("payload is not a JSON object {\"event\",\"data\"}: %v", err)
	}
	if err := checkEventName(p.Event); err != nil {
		return err
	}
	var data bytes.Buffer
	if len(p.Data) == 0 {
		data.WriteString("null")
	} else if err := json.Compact(&data, p.Data); err != nil {
		return err
	}
	rec, err := json.Marshal(struct {
		Event     string          `json:"event"`
		TenantID  string          `json:"tenant_id"`
		UserID    string          `json:"user_id,omitempty"`
		Timestamp int64           `json:"timestamp"`
		Ephemeral bool            `json:"ephemeral"`
		Data      json.RawMessage `json:"data"`
	}{p.Event, tenant, user, l.s.clock.Now().Unix(), true, data.Bytes()})
	if err != nil {
		return err
	}
	l.s.hub.Publish(sse.Message{Tenant: tenant, User: user, Event: p.Event, Record: rec, Data: data.Bytes()})
	return nil
}

// insert stores an event sent on the insert topic and answers the sender one-to-one.
func (l *busLink) insert(tenant string, f bus.Frame) {
	var reply any
	var req insertRequest
	d := json.NewDecoder(bytes.NewReader(f.Payload))
	d.UseNumber()
	if err := d.Decode(&req); err != nil {
		reply = map[string]string{"error": "payload is not a JSON object: " + err.Error()}
	} else if req.TenantID != "" && req.TenantID != tenant {
		reply = map[string]string{"error": "tenant_id does not match the topic's tenant"}
	} else if u, err := l.s.db.UserByID(req.UserID); req.UserID != "" && (err != nil || u.TenantID != tenant) {
		reply = map[string]string{"error": "user_id is not a user of the topic's tenant"}
	} else if e, err := l.s.insertEvent(tenant, req.UserID, req); err != nil {
		msg := "internal error"
		var ae *apiError
		if errors.As(err, &ae) {
			msg = ae.msg
		}
		reply = map[string]string{"error": msg}
	} else {
		reply = map[string]any{"event": e}
	}
	b, _ := json.Marshal(reply)
	if err := l.c.Send(bus.QoSNo, f.Sender, b); err != nil && !errors.Is(err, bus.ErrClosed) {
		l.s.cfg.Logger.Debug("httpbridge: bus insert reply", "to", f.Sender, "err", err)
	}
}

// onPublish is the store's publication callback: the streams, then the bus.
func (s *Server) onPublish(e store.Event) {
	m := message(e)
	s.hub.Publish(m)
	s.link.publish(&e, m.Record)
}
