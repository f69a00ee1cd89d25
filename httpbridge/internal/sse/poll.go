package sse

import (
	"context"
	"crypto/subtle"
	"slices"
	"sync"
	"time"
)

// PollConn is one long-polling connection in use by a poll: an id the client sends back
// with each poll (?conn=), under which the hub holds the ephemeral messages addressed to the
// client between polls (PollHold at most, QueueSize messages at most). Publications are
// never lost: a poll reads them from the event log after its cursor, unless the connection's
// queue is known to hold every one of them.
//
// A poll gets the connection with Poll and calls Watch (from then on live publications are
// queued too, so that none published meanwhile is missed). It then calls Take with its
// cursor: when Take says complete, what it returns is all there is after the cursor; else
// the poll reads the log after the cursor, and, if it read to the log's end, tells the
// connection with LogRead. It calls Wait for something new while it has nothing to answer,
// Take again, and Release at the end.
//
// A connection that a client polls again with its id keeps watching between polls, so that
// the next poll, whose cursor is the last reply's, is answered from the queue without
// reading the log; a queue that fills while no poll waits stops, and the next poll reads the
// log.
type PollConn struct {
	s *stream
}

// Poll returns the long-polling connection id for opts' tenant and user, or a new one when
// id is 0, unknown, ended, or another user's or session's; with other Watch users than before, a new one
// too. The filter and data format are those of opts from now on. The connection stays open
// until PollHold after Release. It returns ErrClosed once the hub is closed.
func (h *Hub) Poll(id uint64, opts StreamOptions) (*PollConn, error) {
	// The common case, the same client polling again with the same token and parameters,
	// takes the hub's read lock only: polls do not queue behind one another or publications.
	h.mu.RLock()
	if s := h.polls[id]; s != nil && s.tenant == opts.Tenant && s.user == opts.User && s.session == opts.Session && sameUsers(s.watch, opts.Watch, opts.User) &&
		s.filter.equal(opts.Filter) && s.enc == encodingOf(tPoll, opts.DataOnly, opts.Anonymous) &&
		(opts.Expires.IsZero() || s.expires == opts.Expires.UnixNano()) {
		s.mu.Lock()
		ok := s.err == nil
		if ok {
			s.active++
			s.reused = true
		}
		s.mu.Unlock()
		if ok {
			h.mu.RUnlock()
			return &PollConn{s}, nil
		}
	}
	h.mu.RUnlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	// Another session (a fresh token) gets a connection of its own, so that killing either
	// session ends only its own polls.
	if s := h.polls[id]; s != nil && s.tenant == opts.Tenant && s.user == opts.User && s.session == opts.Session && sameUsers(s.watch, opts.Watch, opts.User) {
		s.mu.Lock()
		if s.err == nil {
			s.active++
			s.reused = true
			// The queue was filtered with the old filter: the next poll reads the log.
			s.filter, s.enc = opts.Filter, encodingOf(tPoll, opts.DataOnly, opts.Anonymous)
			s.cursorOK = false
			if !opts.Expires.IsZero() {
				s.expires = opts.Expires.UnixNano()
			}
			s.mu.Unlock()
			h.mu.Unlock()
			return &PollConn{s}, nil
		}
		s.mu.Unlock()
	}
	h.mu.Unlock()
	s := h.newStream(tPoll, opts)
	s.notify = make(chan struct{}, 1)
	s.active = 1
	if !h.register(s) {
		return nil, ErrClosed
	}
	return &PollConn{s}, nil
}

// PollIdentity is whom a long-polling connection serves.
type PollIdentity struct {
	Tenant, User, Username, Session string
	Expires                         time.Time // zero: never
}

// PollCredential returns whom the open long-polling connection id serves, if a poll bound it
// to credential (SetCredential): a poll presenting the same credential again may skip its
// verification, since whatever would now refuse it (a killed session, a revoked user, the
// hub closing) has ended the connection. The digests are compared in constant time.
func (h *Hub) PollCredential(id uint64, credential [32]byte) (PollIdentity, bool) {
	h.mu.RLock() // Poll changes a connection's expires under it
	defer h.mu.RUnlock()
	s := h.polls[id]
	if s == nil {
		return PollIdentity{}, false
	}
	s.mu.Lock()
	ok := s.err == nil && s.credSet && subtle.ConstantTimeCompare(s.cred[:], credential[:]) == 1
	s.mu.Unlock()
	if !ok {
		return PollIdentity{}, false
	}
	who := PollIdentity{Tenant: s.tenant, User: s.user, Username: s.username, Session: s.session}
	if s.expires != 0 {
		who.Expires = time.Unix(0, s.expires)
	}
	return who, true
}

// SetCredential binds the connection to the digest of a credential that was verified once the
// connection was in use by the poll (so that a kill or a revocation either refused that
// verification or reached the connection).
func (p *PollConn) SetCredential(credential [32]byte) {
	s := p.s
	s.mu.Lock()
	s.cred, s.credSet = credential, true
	s.mu.Unlock()
}

// HasCredential reports whether the connection is bound to credential.
func (p *PollConn) HasCredential(credential [32]byte) bool {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.credSet && subtle.ConstantTimeCompare(s.cred[:], credential[:]) == 1
}

func sameUsers(have, want []string, self string) bool {
	n := 0
	for _, u := range want {
		if u == "" || u == self {
			continue
		}
		if !slices.Contains(have, u) {
			return false
		}
		n++
	}
	return n == len(have)
}

// ID is the connection's id, for the reply's "conn".
func (p *PollConn) ID() uint64 { return p.s.id }

// Watch makes live publications queue on the connection.
func (p *PollConn) Watch() {
	s := p.s
	s.mu.Lock()
	if !s.watching {
		s.watching = true
		s.cursorOK = false // what came before is in the log only
	}
	s.mu.Unlock()
}

// Wait blocks until something was queued since the last Take (or the connection failed),
// ctx ends or d passes; it returns ctx.Err() when ctx ended, nil otherwise.
func (p *PollConn) Wait(ctx context.Context, d time.Duration) error {
	t := waitTimers.Get().(*time.Timer)
	t.Reset(d)
	defer func() {
		t.Stop() // since Go 1.23, nothing is received from its channel after Stop
		waitTimers.Put(t)
	}()
	select {
	case <-p.s.notify:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitTimers are Wait's timers, stopped: a poll that waits takes one instead of making a
// timer and its channel.
var waitTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// Take returns, encoded as the JSON objects of a poll reply, the ephemeral messages held for
// the connection and the live publications with Seq > after queued while watching, in the
// order they came (in Seq order), with the highest such Seq (or after). A poll that answers
// with only the first of them answers with the last of those as its cursor: the next poll,
// with that cursor, reads the log. complete is true when those are
// all the publications after after: the queue has held every one since the cursor after
// (the connection's last reply's, or the end of a LogRead), none was left out for want of
// room, and no other poll shares the connection. Otherwise read the log after after instead
// (keeping only the ephemeral messages of Take), then call LogRead. err is why the
// connection ended (ErrKilled, ErrUserClosed, ErrExpired, ErrClosed), if it did: the poll
// answers with that instead.
func (p *PollConn) Take(after uint64) (ephemeral [][]byte, pubs []Encoded, last uint64, complete bool, err error) {
	s := p.s
	s.mu.Lock()
	// Two polls on one connection (a client that polled again before its last poll ended)
	// would share the queue, one taking the other's publications: each reads the log then.
	complete = s.cursorOK && s.cursor == after && !s.overflow && s.active <= 1
	q, err := s.q, s.err
	s.q, s.held, s.overflow = nil, 0, false
	select { // what is queued from now on signals again
	case <-s.notify:
	default:
	}
	enc := s.enc
	last = after
	if complete {
		for _, it := range q {
			if it.m.Seq > last {
				last = it.m.Seq
			}
		}
		s.cursor = last
	} else {
		s.cursorOK = false
	}
	s.mu.Unlock()
	for _, it := range q {
		switch {
		case it.m.Seq == 0:
			ephemeral = append(ephemeral, it.bytes(enc))
		case complete && it.m.Seq > after:
			pubs = append(pubs, Encoded{Seq: it.m.Seq, JSON: it.bytes(enc)})
		}
	}
	return ephemeral, pubs, last, complete, err
}

// Encoded is a publication as a poll reply carries it.
type Encoded struct {
	Seq  uint64
	JSON []byte
}

// LogRead tells the connection that the poll, after a Take that was not complete, read every
// publication up to last from the log (to the log's end): the queue, filled since Watch,
// holds the ones after it, unless one was left out meanwhile or another poll shares the
// connection.
func (p *PollConn) LogRead(last uint64) {
	s := p.s
	s.mu.Lock()
	s.cursor, s.cursorOK = last, s.watching && !s.overflow && s.active <= 1
	s.mu.Unlock()
}

// Sent counts n messages a poll's reply delivered (Stats).
func (p *PollConn) Sent(n int) { p.s.hub.stats.messages[tPoll].Add(uint64(n)) }

// Err is why the connection ended, or nil.
func (p *PollConn) Err() error { return p.s.failed() }

// Release ends the poll's use of the connection, and starts the hold of PollHold. A
// connection that a client has polled again with its id keeps queueing publications; a new
// one stops (the client may never come back with it).
func (p *PollConn) Release() {
	s := p.s
	s.mu.Lock()
	s.active--
	if s.active == 0 {
		s.idleSince = s.hub.now().UnixNano()
		if !s.reused {
			s.stopWatchingLocked()
		}
	}
	s.mu.Unlock()
}

// stopWatchingLocked stops queueing publications and drops those queued (the next poll reads
// them from the log); ephemeral messages stay.
func (s *stream) stopWatchingLocked() {
	s.watching, s.cursorOK = false, false
	keep := s.q[:0]
	for _, it := range s.q {
		if it.m.Seq == 0 {
			keep = append(keep, it)
		}
	}
	clear(s.q[len(keep):])
	s.q = keep
}
