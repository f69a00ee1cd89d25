package httpbridge

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// Bounds of one long-poll reply; a client with more to read polls again with the cursor it
// got (it is never told "you missed some": the log has everything).
const (
	maxPollMessages = 1000
	maxPollBytes    = 1 << 20
)

// pollReply gathers a long-poll reply: {"messages":[…],"last_event_id":"N","conn":"ID"}.
type pollReply struct {
	b     []byte
	n     int
	f     sse.Filter
	data  bool
	last  uint64
	limit bool      // the reply is full
	woken bool      // the poll waited, and a publication or message woke it
	yield bool      // the reply is written, holds messages, and the poll was woken
	cl    [1]string // the Content-Length header's value, without a slice of its own
}

var errReplyFull = errors.New("poll reply full")

// full: the reply holds as many messages or bytes as one may.
func (pr *pollReply) full() bool { return pr.n >= maxPollMessages || len(pr.b) >= maxPollBytes }

func (pr *pollReply) addRaw(obj []byte) {
	if pr.n > 0 {
		pr.b = append(pr.b, ',')
	}
	pr.b = append(pr.b, obj...)
	pr.n++
}

func (pr *pollReply) add(m sse.Message) {
	if pr.n > 0 {
		pr.b = append(pr.b, ',')
	}
	data := m.Record
	if pr.data {
		data = m.Data
	}
	pr.b = sse.AppendJSONMessageID(pr.b, m.Event, data, m.IDPrefix, m.Seq)
	pr.n++
}

// fromLog adds the publications after the cursor that pass the filter, until the reply is
// full; the cursor becomes the last publication read, filtered out or not.
func (s *Server) fromLog(pr *pollReply, tenant string, message func(store.Event) sse.Message) error {
	last, err := s.db.Since(tenant, pr.last, func(e store.Event) error {
		if pr.full() {
			pr.limit = true
			return errReplyFull
		}
		if pr.f.Match(e.Event, e.CollectionID) {
			pr.add(message(e))
		}
		return nil
	})
	if s.epoch != "" {
		last = max(last, pr.last) // a cluster cursor is a position in the one log
	}
	pr.last = last
	if errors.Is(err, errReplyFull) {
		err = nil
	}
	return err
}

// GET /poll[/{tenant_id}]: without a cursor, the state and its cursor at once; with one,
// every publication after it (up to a bounded reply), or else the next ones as they come
// within ?wait= seconds, or [] and the same cursor. Ephemeral messages addressed to the
// client since its last poll on the same ?conn= come with it. A client that polls again on
// its connection with the cursor of its last reply is answered from the connection's queue
// (sse.PollConn), without reading the log.
func (s *Server) servePoll(w http.ResponseWriter, r *http.Request, tenant string, prm streamParams, opts sse.StreamOptions) error {
	pc, err := s.hub.Poll(prm.conn, opts)
	if err != nil {
		return errorf(http.StatusServiceUnavailable, "server shutting down")
	}
	var pr *pollReply
	defer func() {
		// The connection is released before the client can have the reply, so that its next
		// poll finds the connection free (a poll that shares it reads the log).
		pc.Release()
		if pr != nil && pr.yield {
			// A publication wakes every poll waiting for it at once, and the last reply to
			// go out sets the latency that counts. Each woken poll sends its reply now, then
			// lets the others send theirs before net/http does its part of the round
			// (finishing this request, reading the next): that puts the replies first and
			// lowered p99 latency by about a sixth with 1,000 pollers on two cores. A poll
			// answered at once, from messages that were waiting, does not yield: under a
			// high rate, the later a client polls again the more its next reply carries,
			// and hurrying each reply out cost fan-out half its rate.
			http.NewResponseController(w).Flush()
			runtime.Gosched()
		}
	}()
	if !opts.Anonymous && (!prm.cred.fast || pc.ID() != prm.conn) {
		if err := s.bindPollCredential(r, pc, prm.cred); err != nil {
			return err
		}
	}
	bp := replyPool.Get().(*[]byte)
	pr = &pollReply{b: append((*bp)[:0], `{"messages":[`...), f: opts.Filter, data: prm.dataOnly, last: prm.after}
	defer func() {
		if cap(pr.b) <= 64<<10 { // let a rare big reply go
			*bp = pr.b[:0]
			replyPool.Put(bp)
		}
	}()
	pc.Watch()
	state := func() error { // the state, then its cursor
		last, err := s.backlog(r.Context(), tenant, s.messageFor(opts.Anonymous), streamParams{}, opts.Filter, func(m sse.Message) error { pr.add(m); return nil })
		if err != nil {
			return storeError(err)
		}
		pr.last = last
		pc.LogRead(last)
		return nil
	}
	checked := false // the cursor was checked against the log (cluster mode: its epoch and range)
	deadline := time.Now().Add(prm.wait)
	for {
		eph, pubs, last, complete, kerr := pc.Take(pr.last)
		if kerr != nil {
			return pollEnded(kerr)
		}
		switch {
		case !prm.resume:
			if err := state(); err != nil {
				return err
			}
			return s.writePoll(w, pr, eph, pc)
		case complete && !prm.stale:
			pr.last = last
			for _, m := range pubs {
				if pr.full() {
					// The rest were taken from the queue: the next poll, whose cursor is
					// this one, not the connection's, reads them from the log.
					pr.limit = true
					break
				}
				pr.addRaw(m.JSON)
				pr.last = m.Seq
			}
		default:
			if !checked {
				checked = true
				if ok, resync := s.cursorOK(r.Context(), prm); !ok {
					pr.add(resync)
					if err := state(); err != nil {
						return err
					}
					return s.writePoll(w, pr, eph, pc)
				}
			}
			if err := s.fromLog(pr, tenant, s.messageFor(opts.Anonymous)); err != nil {
				return storeError(err)
			}
			if pr.last < prm.after { // Since answers a cursor ahead of the log with the log's last id
				pr.add(resyncMessage(prm.after, pr.last))
				if err := state(); err != nil {
					return err
				}
				return s.writePoll(w, pr, eph, pc)
			}
			if !pr.limit {
				pc.LogRead(pr.last)
			}
		}
		if pr.n > 0 || len(eph) > 0 {
			return s.writePoll(w, pr, eph, pc)
		}
		d := time.Until(deadline)
		if d <= 0 {
			return s.writePoll(w, pr, nil, pc)
		}
		if err := pc.Wait(r.Context(), d); err != nil {
			return nil // the client went away
		}
		pr.woken = true
	}
}

// pollCred is what pollPrincipal found of a poll's bearer token.
type pollCred struct {
	digest [sha256.Size]byte // of the token
	token  bool              // the poll presented a bearer token
	fast   bool              // it was the one its connection is bound to: not verified again
}

// pollToken is the bearer token of a poll, read as authenticateStream reads it (the
// Authorization header, else ?token=, else the rtbus_token cookie); "" for Basic
// credentials or none.
func pollToken(r *http.Request, q *query) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		return strings.TrimSpace(cred)
	}
	if t := q.Get("token"); t != "" {
		return t
	}
	if c, err := r.Cookie(tokenCookie); err == nil {
		return c.Value
	}
	return ""
}

// pollPrincipal authenticates a poll that comes back on its connection (?conn=) with the
// token the connection is bound to (bindPollCredential), without verifying the token again
// or reading the user record: a revocation or a killed session ends the connection (its
// polls then take the full check, and fail it). The token's expiry and the session
// blacklist are checked still. ok is false when the poll needs the full check (or watches
// other users: ?users= needs the user's roles).
func (s *Server) pollPrincipal(r *http.Request, q *query) (p principal, c pollCred, ok bool) {
	tok := pollToken(r, q)
	if tok == "" {
		return p, c, false
	}
	c.digest, c.token = tokenKey(tok), true
	id, err := strconv.ParseUint(q.Get("conn"), 10, 64)
	if err != nil || q.Get("users") != "" {
		return p, c, false
	}
	who, ok := s.hub.PollCredential(id, c.digest)
	if !ok || who.Expires.IsZero() {
		return p, c, false
	}
	now := s.clock.Now()
	if !now.Before(who.Expires) || (who.Session != "" && s.bl.refused(who.Session, now.Unix())) {
		return p, c, false
	}
	c.fast = true
	return principal{user: store.User{ID: who.User, TenantID: who.Tenant, Username: who.Username}, exp: who.Expires.Unix(), jti: who.Session}, c, true
}

// bindPollCredential binds the connection to the poll's token once it is verified again now
// that the connection is in use (a kill or revocation that came after the first check
// reached the connection, one that came before is refused here), so that the client's next
// polls on the connection with the same token skip verifying it (pollPrincipal).
func (s *Server) bindPollCredential(r *http.Request, pc *sse.PollConn, c pollCred) error {
	if !c.token || pc.HasCredential(c.digest) {
		return nil
	}
	if _, err := s.authenticateStream(r); err != nil {
		return err
	}
	pc.SetCredential(c.digest)
	return nil
}

// replyPool holds the buffers poll replies are built in (net/http copies what it is given).
var replyPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// Header values of every poll reply, shared (net/http only reads them).
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// pollEnded answers a poll whose connection was ended under it.
func pollEnded(err error) error {
	switch {
	case errors.Is(err, sse.ErrKilled):
		return errorf(http.StatusUnauthorized, "session killed")
	case errors.Is(err, sse.ErrUserClosed):
		return errorf(http.StatusUnauthorized, "user revoked")
	case errors.Is(err, sse.ErrExpired):
		return errorf(http.StatusUnauthorized, "token expired")
	}
	return errorf(http.StatusServiceUnavailable, "server shutting down")
}

func (s *Server) writePoll(w http.ResponseWriter, pr *pollReply, eph [][]byte, pc *sse.PollConn) error {
	for _, b := range eph {
		pr.addRaw(b)
	}
	pc.Sent(pr.n)
	b := append(pr.b, `],"last_event_id":"`...)
	b = append(b, s.idPrefix...)
	b = strconv.AppendUint(b, pr.last, 10)
	b = append(b, `","conn":"`...)
	b = strconv.AppendUint(b, pc.ID(), 10)
	b = append(b, "\"}\n"...)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	pr.cl[0] = strconv.Itoa(len(b))
	h["Content-Length"] = pr.cl[:] // never chunked, however long
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	pr.b = b // back to the pool with its growth
	pr.yield = pr.woken && pr.n > 0
	return nil
}
