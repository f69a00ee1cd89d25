package httpbridge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// message is the stream form of a published event.
func message(e store.Event) sse.Message {
	rec, err := json.Marshal(e)
	if err != nil {
		// Data was compacted and checked at insert; a record always encodes.
		rec = []byte(`{}`)
	}
	data := []byte(e.Data)
	if len(data) == 0 {
		data = []byte("null")
	}
	return sse.Message{Tenant: e.TenantID, Seq: e.Seq, Event: e.Event, Collection: e.CollectionID, Record: rec, Data: data}
}

// resyncMessage tells a client that its cursor is not one the server has (ahead of the
// log, or from a log that was reset): the full state follows.
func resyncMessage(after, last uint64) sse.Message {
	b, _ := json.Marshal(map[string]string{
		"reason":        "cursor ahead of the event log: the full state follows",
		"last_event_id": strconv.FormatUint(after, 10),
		"log_last_id":   strconv.FormatUint(last, 10),
	})
	return sse.Message{Event: "resync", Record: b, Data: b}
}

// The stream routes: one handler per route, one path for all of them.
//
//	GET /events/{tenant_id}, GET /sse   SSE
//	GET /ws/{tenant_id},     GET /ws    WebSocket
//	GET /poll/{tenant_id},   GET /poll  long-polling
func (s *Server) streamRoute(t string, withTenant bool) route {
	return func(w http.ResponseWriter, r *http.Request) error {
		var q query
		parseQuery(r.URL.RawQuery, &q)
		var cred pollCred
		p, ok := principal{}, false
		if t == sse.TransportPoll {
			p, cred, ok = s.pollPrincipal(r, &q) // a client polling again on its connection
		}
		if !ok {
			var err error
			if p, err = s.authenticateStream(r); err != nil {
				return err
			}
		}
		if withTenant {
			if t := r.PathValue("tenant_id"); t != p.user.TenantID {
				return errorf(http.StatusForbidden, "tenant %q is not your tenant", t)
			}
		}
		prm, err := parseStreamQueryWith(r, &q, s.parseCursor)
		if err != nil {
			return err
		}
		prm.cred = cred
		watch, err := s.watchList(p, prm.users)
		if err != nil {
			return err
		}
		return s.serveStream(w, r, t, p, prm, watch, "")
	}
}

// stream is GET /sse's handler.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) error {
	return s.streamRoute(sse.TransportSSE, false)(w, r)
}

// serveAnonymous serves the anonymous stream of a public tenant over transport t.
func (s *Server) serveAnonymous(w http.ResponseWriter, r *http.Request, t, tenant string) error {
	prm, err := s.streamParamsOf(r)
	if err != nil {
		return err
	}
	if len(prm.users) > 0 {
		return errorf(http.StatusForbidden, "users: an anonymous stream watches no user")
	}
	return s.serveStream(w, r, t, principal{}, prm, nil, tenant)
}

// authenticateStream: the credentials of a stream route, which alone also take ?token= and
// the rtbus_token cookie that POST /login?cookie=1 sets.
func (s *Server) authenticateStream(r *http.Request) (principal, error) {
	p, err := s.authenticate(r, true)
	if err != errNoCredentials {
		return p, err
	}
	if c, cerr := r.Cookie(tokenCookie); cerr == nil && c.Value != "" {
		return s.checkToken(c.Value)
	}
	return p, err
}

// tokenCookie is the cookie POST /login?cookie=1 sets; stream routes accept it.
const tokenCookie = "rtbus_token"

// setTokenCookie answers POST /login?cookie=1: the token as an HttpOnly, SameSite=Strict
// cookie (Secure under TLS), for browser front ends that cannot keep it from scripts.
func (s *Server) setTokenCookie(w http.ResponseWriter, r *http.Request, tok string) {
	http.SetCookie(w, &http.Cookie{
		Name: tokenCookie, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(s.cfg.JWTExpiry / time.Second),
	})
}

// watchList resolves ?users= (usernames or ids) into user ids: another tenant's user (or an
// unknown one) is 403; another user of the tenant needs a privileged role (403 otherwise).
func (s *Server) watchList(p principal, names []string) ([]string, error) {
	var ids []string
	for _, n := range names {
		u, err := s.acct.UserByName(n)
		if errors.Is(err, store.ErrNotFound) {
			u, err = s.acct.UserByID(n)
		}
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.TenantID != p.user.TenantID) {
			return nil, errorf(http.StatusForbidden, "users: %q is not a user of your tenant", n)
		} else if err != nil {
			return nil, storeError(err)
		}
		if u.ID == p.user.ID {
			continue
		}
		if !s.privileged(p.user.Roles) {
			return nil, errorf(http.StatusForbidden, "users: watching other users needs one of the roles %v", s.cfg.PrivilegedRoles)
		}
		ids = append(ids, u.ID)
	}
	return ids, nil
}

func (s *Server) privileged(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(s.cfg.PrivilegedRoles, r) {
			return true
		}
	}
	return false
}

func (s *Server) streamOptions(r *http.Request, p principal, prm streamParams, watch []string) sse.StreamOptions {
	opts := sse.StreamOptions{
		Tenant: p.user.TenantID, User: p.user.ID, DataOnly: prm.dataOnly,
		Session: p.jti, Username: p.user.Username, Remote: r.RemoteAddr, Watch: watch,
		Filter: sse.NewFilter(prm.events, prm.collections),
	}
	if p.exp != 0 {
		// A stream lasts no longer than its token (Basic credentials have no expiry): the
		// client reconnects with a fresh one and resumes with its cursor.
		opts.Expires = time.Unix(p.exp, 0)
	}
	return opts
}

// serveStream serves over transport t the stream of p's tenant, or with anon set the
// anonymous stream of tenant anon (p is then the zero principal).
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, t string, p principal, prm streamParams, watch []string, anon string) error {
	opts := s.streamOptions(r, p, prm, watch)
	tenant := p.user.TenantID
	if anon != "" {
		tenant, opts.Tenant, opts.Anonymous = anon, anon, true
	}
	if t == sse.TransportPoll {
		// Apart from serveLive, whose closures would move p and prm to the heap for every
		// poll too.
		return s.servePoll(w, r, tenant, prm, opts)
	}
	return s.serveLive(w, r, t, p, prm, opts)
}

// messageFor is how the stream form of an event is made for a stream (anonymous or not).
func (s *Server) messageFor(anon bool) func(store.Event) sse.Message {
	if anon {
		return func(e store.Event) sse.Message { m := s.message(e); m.Anon = anonRecord(e); return m }
	}
	return s.message
}

// serveLive serves an SSE or WebSocket stream (serveStream).
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request, t string, p principal, prm streamParams, opts sse.StreamOptions) error {
	tenant, uid, anon := opts.Tenant, p.user.ID, opts.Anonymous
	msg := s.messageFor(anon)
	filter := opts.Filter
	opts.Backlog = func(send func(sse.Message) error) (uint64, error) {
		if anon {
			// No user, no session: nothing to kill.
			return s.backlog(r.Context(), tenant, msg, prm, filter, send)
		}
		// Registered with the hub by now: a revocation or kill from here on finds this
		// stream, and one that came before is seen here (the hub then sends the final
		// message).
		if u, err := s.acct.UserByID(uid); err != nil || u.Revoked {
			return 0, sse.ErrUserClosed
		}
		if p.jti != "" && s.bl.refused(p.jti, s.clock.Now().Unix()) {
			return 0, sse.ErrKilled
		}
		return s.backlog(r.Context(), tenant, msg, prm, filter, send)
	}
	var err error
	if t == sse.TransportWS {
		err = s.hub.ServeWS(r.Context(), w, r, opts)
		if errors.Is(err, sse.ErrHandshake) {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	} else {
		// Idle HTTP/1.x streams live in the hub with no goroutine and no net/http buffers
		// (under 1 KB each instead of ~26 KB); Shutdown's hub.Close ends them.
		opts.Detach = true
		err = s.hub.Serve(r.Context(), w, opts)
	}
	if err != nil && !errors.Is(err, sse.ErrClosed) && !errors.Is(err, sse.ErrUserClosed) && !errors.Is(err, sse.ErrExpired) &&
		!errors.Is(err, sse.ErrSlow) && !errors.Is(err, sse.ErrKilled) && r.Context().Err() == nil {
		s.cfg.Logger.Debug("httpbridge: stream ended", "transport", t, "tenant", tenant, "user", uid, "err", err)
	}
	return nil
}

// backlog sends what precedes live delivery, filtered: without a cursor the state (only its
// last message carries an id, the tenant's sequence when the state was read: a client cut off
// halfway through gets the whole state again); with a cursor the log after it; with a cursor
// ahead of the log a resync message, then the state. It returns the cursor it reached.
func (s *Server) backlog(ctx context.Context, tenant string, message func(store.Event) sse.Message, prm streamParams, f sse.Filter, send func(sse.Message) error) (uint64, error) {
	if ok, resync := s.cursorOK(ctx, prm); !ok {
		if err := send(resync); err != nil {
			return 0, err
		}
	} else if prm.resume {
		last, err := s.db.Since(tenant, prm.after, func(e store.Event) error {
			if !f.Match(e.Event, e.CollectionID) {
				return nil
			}
			return send(message(e))
		})
		if s.epoch != "" {
			// A cluster cursor is a position in the one log: a tenant whose last publication
			// is before it has nothing to replay, and nothing up to it is sent live.
			return max(last, prm.after), err
		}
		// Since answers a cursor ahead of the log with the log's last id.
		if err != nil || last >= prm.after {
			return last, err
		}
		if err := send(resyncMessage(prm.after, last)); err != nil {
			return 0, err
		}
	}
	events, seq, err := s.db.State(tenant)
	if err != nil {
		return 0, err
	}
	events = slices.DeleteFunc(events, func(e store.Event) bool { return !f.Match(e.Event, e.CollectionID) })
	for i, e := range events {
		m := message(e)
		m.Seq = 0
		if i == len(events)-1 {
			m.Seq = seq
		}
		if err := send(m); err != nil {
			return 0, err
		}
	}
	return seq, nil
}
