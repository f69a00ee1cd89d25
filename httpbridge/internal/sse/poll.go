package sse

import (
	"context"
	"slices"
	"time"
)

// PollConn is one long-polling connection in use by a poll: an id the client sends back
// with each poll (?conn=), under which the hub holds the ephemeral messages addressed to the
// client between polls (PollHold at most, QueueSize messages at most). Publications are not
// held: each poll reads them from the event log after its cursor, so none is ever lost.
//
// A poll gets the connection with Poll, calls Watch before it reads the log (from then on
// live publications are queued too, so none published meanwhile is missed), Wait for
// something new if the log had nothing, Take what came, and Release at the end.
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
			s.filter, s.enc = opts.Filter, encodingOf(tPoll, opts.DataOnly, opts.Anonymous)
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

// Watch makes live publications queue on the connection until Release.
func (p *PollConn) Watch() {
	s := p.s
	s.mu.Lock()
	s.watching = true
	s.mu.Unlock()
}

// Wait blocks until something was queued since the last Take (or the connection failed),
// ctx ends or d passes; it returns ctx.Err() when ctx ended, nil otherwise.
func (p *PollConn) Wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.s.notify:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Take returns, encoded as the JSON objects of a poll reply, the ephemeral messages held for
// the connection and the live publications with Seq > after queued while watching, in the
// order they came, with the highest such Seq (or after). complete is false when a
// publication could not be queued (the queue was full): read the log after after instead and
// keep only the ephemeral messages of Take. err is why the connection ended (ErrKilled,
// ErrUserClosed, ErrExpired, ErrClosed), if it did: the poll answers with that instead.
func (p *PollConn) Take(after uint64) (ephemeral, pubs [][]byte, last uint64, complete bool, err error) {
	s := p.s
	s.mu.Lock()
	// Two polls on one connection (a client that polled again before its last poll ended)
	// would share the queue, one taking the other's publications: each reads the log then.
	q, complete, err := s.q, !s.overflow && s.active <= 1, s.err
	s.q, s.held, s.overflow = nil, 0, false
	enc := s.enc
	s.mu.Unlock()
	last = after
	for _, it := range q {
		switch {
		case it.m.Seq == 0:
			ephemeral = append(ephemeral, it.bytes(enc))
		case it.m.Seq > last:
			pubs = append(pubs, it.bytes(enc))
			last = it.m.Seq
		}
	}
	return ephemeral, pubs, last, complete, err
}

// Sent counts n messages a poll's reply delivered (Stats).
func (p *PollConn) Sent(n int) { p.s.hub.stats.messages[tPoll].Add(uint64(n)) }

// Err is why the connection ended, or nil.
func (p *PollConn) Err() error { return p.s.failed() }

// Release ends the poll's use of the connection: publications are no longer queued, and the
// hold of PollHold starts.
func (p *PollConn) Release() {
	s := p.s
	s.mu.Lock()
	s.active--
	if s.active == 0 {
		s.watching = false
		s.overflow = false
		s.idleSince = s.hub.now().UnixNano()
		// Queued publications go: the next poll reads them from the log.
		keep := s.q[:0]
		for _, it := range s.q {
			if it.m.Seq == 0 {
				keep = append(keep, it)
			}
		}
		clear(s.q[len(keep):])
		s.q = keep
	}
	s.mu.Unlock()
}
