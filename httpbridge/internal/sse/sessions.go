package sse

import (
	"errors"
	"sort"
	"sync/atomic"
	"time"
)

// Transports a stream can be carried over (StreamOptions.Transport).
const (
	TransportSSE  = "sse"
	TransportWS   = "ws"
	TransportPoll = "poll"
)

// transport indexes the per-transport counters.
type transport uint8

const (
	tSSE transport = iota
	tWS
	tPoll
	nTransports
)

var transportNames = [nTransports]string{TransportSSE, TransportWS, TransportPoll}

// KillEvent is the event name of the final message a killed stream receives.
const KillEvent = "session_killed"

// Reasons a stream ended, as Stats counts them.
const (
	DropSlow   = "slow"   // its queue filled or a write stuck
	DropKilled = "killed" // KillSession, KillUser, CloseUser
	DropClosed = "closed" // anything else: the client went, the credential expired, the hub closed
)

// hubStats are the hub's counters: atomics, read by Stats at scrape time.
type hubStats struct {
	streams [nTransports]atomic.Int64
	// messages written by the streams that left the hub, and by long polls; each open stream
	// counts its own (stream.sent), which Stats adds.
	messages [nTransports]atomic.Uint64
	slow     atomic.Uint64
	killed   atomic.Uint64
	closed   atomic.Uint64
}

func (st *hubStats) ended(t transport, why error) {
	st.streams[t].Add(-1)
	switch {
	case errors.Is(why, ErrSlow):
		st.slow.Add(1)
	case errors.Is(why, ErrKilled), errors.Is(why, ErrUserClosed):
		st.killed.Add(1)
	default:
		st.closed.Add(1)
	}
}

// Stats are the hub's gauges and counters since NewHub, keyed by transport name
// (TransportSSE, …) and drop reason (DropSlow, …); every known key is present.
type Stats struct {
	Streams  map[string]int64  // open streams
	Messages map[string]uint64 // messages written (keep-alives not counted)
	Dropped  map[string]uint64 // streams ended, by reason
}

// Stats reads the hub's counters. It visits every open stream (each counts the messages it
// wrote), under the hub's read lock.
func (h *Hub) Stats() Stats {
	st := Stats{Streams: map[string]int64{}, Messages: map[string]uint64{}, Dropped: map[string]uint64{
		DropSlow: h.stats.slow.Load(), DropKilled: h.stats.killed.Load(), DropClosed: h.stats.closed.Load(),
	}}
	var msgs [nTransports]uint64
	h.mu.RLock() // a stream's count moves to the hub's under the write lock: never counted twice
	for _, ss := range h.tenants {
		for _, s := range ss {
			msgs[s.transport] += s.sent.Load()
		}
	}
	for i := range msgs {
		msgs[i] += h.stats.messages[i].Load()
	}
	h.mu.RUnlock()
	for i, n := range transportNames {
		st.Streams[n] = h.stats.streams[i].Load()
		st.Messages[n] = msgs[i]
	}
	return st
}

// KillMessage is the final message of a killed stream; why is plain ASCII.
func KillMessage(why string) Message {
	rec := []byte(`{"reason":"` + why + `"}`)
	return Message{Event: KillEvent, Record: rec, Data: rec}
}

func killItem(why string) *item { return &item{m: KillMessage(why)} }

// kill is the final message of the streams one kill ends, made once for all of them: the
// KillEvent message (encoded at most once per encoding, as a publication is) and, at the
// first WebSocket among them, its close frame.
type kill struct {
	why string
	msg *item
	ws  *item
}

func newKill(why string) *kill { return &kill{why: why, msg: killItem(why)} }

// final is the item that ends a stream of transport t. Not safe for concurrent use: one
// goroutine kills the streams of one kill.
func (k *kill) final(t transport) *item {
	if t != tWS {
		return k.msg
	}
	if k.ws == nil {
		k.ws = &item{raw: appendWSClose(nil, CloseSessionKilled, k.why)}
	}
	return k.ws
}

// KillSession sends every open stream of the session the final KillEvent message and ends
// it (its Serve, or its Done for a detached stream, gets ErrKilled) once the message is
// written, within half a second whatever the client does. It returns how many streams it
// killed.
func (h *Hub) KillSession(session string) int {
	if session == "" {
		return 0
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return killAll(h.sessions[session], "session killed", nil)
}

// KillUser is KillSession for every stream of the user (a revocation).
func (h *Hub) KillUser(userID string) int {
	if userID == "" {
		return 0
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	// h.users also holds the streams watching the user: those stay.
	return killAll(h.users[userID], "user revoked", func(s *stream) bool { return s.user == userID })
}

func killAll(ss []*stream, why string, match func(*stream) bool) int {
	if len(ss) == 0 {
		return 0
	}
	k := newKill(why)
	n := 0
	for _, s := range ss {
		if (match == nil || match(s)) && s.killWith(k, ErrKilled) {
			n++
		}
	}
	return n
}

// Conn describes one open stream (presence).
type Conn struct {
	ID        uint64
	Transport string
	Tenant    string
	User      string // user id; "" for anonymous streams
	Username  string
	Session   string
	Since     time.Time
	Remote    string
}

// Conns lists the open streams (ended or killed ones left out) of tenant ("" for every tenant), and of user among them
// ("" for every user), oldest first.
func (h *Hub) Conns(tenant, user string) []Conn {
	var out []Conn
	add := func(s *stream) {
		s.mu.Lock()
		ended := s.err != nil || s.kill != nil // a long-poll connection lingers until reaped
		s.mu.Unlock()
		if !ended && (tenant == "" || s.tenant == tenant) && (user == "" || s.user == user) {
			out = append(out, Conn{s.id, transportNames[s.transport], s.tenant, s.user, s.username, s.session, s.since, s.remote})
		}
	}
	h.mu.RLock()
	switch {
	case user != "":
		for _, s := range h.users[user] {
			add(s)
		}
	case tenant != "":
		for _, s := range h.tenants[tenant] {
			add(s)
		}
	default:
		for _, ss := range h.tenants {
			for _, s := range ss {
				add(s)
			}
		}
	}
	h.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CloseAnonymous ends the anonymous streams of the tenant (it stopped being public); their
// Serve returns ErrClosed.
func (h *Hub) CloseAnonymous(tenant string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, s := range h.tenants[tenant] {
		if s.anon {
			s.fail(ErrClosed)
		}
	}
}
