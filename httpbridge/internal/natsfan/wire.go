package natsfan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// The subjects, under rtbus's prefix. Tenant and user ids travel in the body, never in a
// subject, so no id can address a subject of its own choosing: there are exactly these four.
// None is captured by a JetStream stream (the event log holds rtbus.ev.> only): nothing here
// is stored.
const (
	subjPush = "rtbus.fan.push" // an ephemeral message; with a reply subject, answer the count
	subjKill = "rtbus.fan.kill" // end streams: a session's, a user's, a tenant's anonymous ones
	subjWho  = "rtbus.fan.who"  // presence: answer this node's matching streams
	subjNode = "rtbus.fan.node" // membership: hello (periodic) and bye
)

// Headers every message carries: the sending instance (to drop one's own echo and to match
// replies with the nodes expected) and its node name (for people).
const (
	hdrFrom = "Rtbus-From"
	hdrNode = "Rtbus-Node"
	hdrBye  = "Rtbus-Bye"
)

// Kill kinds.
const (
	killSession = "session"
	killUser    = "user"
	killAnon    = "anonymous"
)

// errBadMessage: a message from another node that cannot be read (another version, or not
// rtbus): logged and dropped.
var errBadMessage = errors.New("natsfan: malformed message")

// pushMsg is the body of rtbus.fan.push.
type pushMsg struct {
	Tenant string          `json:"tenant"`
	User   string          `json:"user,omitempty"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
}

// encodePush encodes m with its data as it is: json.Marshal would escape <, > and & in it, and
// the other nodes' streams would not send the bytes this node's send.
func encodePush(m pushMsg) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func decodePush(b []byte) (pushMsg, error) {
	var m pushMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: push: %v", errBadMessage, err)
	}
	if m.Tenant == "" || m.Event == "" || len(m.Data) == 0 {
		return m, fmt.Errorf("%w: push without tenant, event or data", errBadMessage)
	}
	// Streams send Data as it is: it must be compact, as the pushing node made it.
	var c bytes.Buffer
	if json.Compact(&c, m.Data) != nil || c.Len() != len(m.Data) {
		return m, fmt.Errorf("%w: push data is not compact JSON", errBadMessage)
	}
	return m, nil
}

// killMsg is the body of rtbus.fan.kill.
type killMsg struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

func decodeKill(b []byte) (killMsg, error) {
	var m killMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: kill: %v", errBadMessage, err)
	}
	switch {
	case m.ID == "":
		return m, fmt.Errorf("%w: kill without id", errBadMessage)
	case m.Kind != killSession && m.Kind != killUser && m.Kind != killAnon:
		return m, fmt.Errorf("%w: kill of unknown kind %q", errBadMessage, m.Kind)
	}
	return m, nil
}

// whoMsg is the body of a rtbus.fan.who request.
type whoMsg struct {
	Tenant string `json:"tenant,omitempty"`
	User   string `json:"user,omitempty"`
}

func decodeWho(b []byte) (whoMsg, error) {
	var m whoMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: who: %v", errBadMessage, err)
	}
	return m, nil
}

// wireConn is one stream in a presence reply.
type wireConn struct {
	ID        uint64 `json:"conn"`
	Transport string `json:"transport"`
	Tenant    string `json:"tenant_id"`
	User      string `json:"user,omitempty"`
	Username  string `json:"username,omitempty"`
	Session   string `json:"session,omitempty"`
	Since     int64  `json:"since"` // Unix nanoseconds
	Remote    string `json:"remote,omitempty"`
}

// whoReply answers a rtbus.fan.who request. Truncated: the node had more streams than one
// NATS message holds.
type whoReply struct {
	Conns     []wireConn `json:"conns"`
	Truncated bool       `json:"truncated,omitempty"`
}

func toWire(c sse.Conn) wireConn {
	return wireConn{c.ID, c.Transport, c.Tenant, c.User, c.Username, c.Session, c.Since.UnixNano(), c.Remote}
}

func fromWire(node string, w wireConn) Conn {
	return Conn{Node: node, Conn: sse.Conn{ID: w.ID, Transport: w.Transport, Tenant: w.Tenant, User: w.User,
		Username: w.Username, Session: w.Session, Since: time.Unix(0, w.Since), Remote: w.Remote}}
}

func decodeWhoReply(b []byte) (whoReply, error) {
	var r whoReply
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: who reply: %v", errBadMessage, err)
	}
	return r, nil
}

// countReply answers a rtbus.fan.push that has a reply subject.
type countReply struct {
	N int `json:"n"`
}

func decodeCount(b []byte) (countReply, error) {
	var r countReply
	if err := json.Unmarshal(b, &r); err != nil || r.N < 0 {
		return countReply{}, fmt.Errorf("%w: count reply %q", errBadMessage, b)
	}
	return r, nil
}
