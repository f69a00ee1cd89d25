package httpbridge

import (
	"encoding/json"
	"errors"
	"net/http"
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
	return sse.Message{Tenant: e.TenantID, Seq: e.Seq, Event: e.Event, Record: rec, Data: data}
}

// GET /events/{tenant_id}: the stream of the caller's own tenant only.
func (s *Server) tenantStream(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r, true)
	if err != nil {
		return err
	}
	if t := r.PathValue("tenant_id"); t != p.user.TenantID {
		return errorf(http.StatusForbidden, "tenant %q is not your tenant", t)
	}
	return s.serveStream(w, r, p, "")
}

// GET /sse: the stream of the caller's tenant.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r, true)
	if err != nil {
		return err
	}
	return s.serveStream(w, r, p, "")
}

// serveStream serves the stream of p's tenant, or with anon set the anonymous stream of
// tenant anon (p is then the zero principal).
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, p principal, anon string) error {
	q := r.URL.Query()
	var after uint64
	resume := false
	for _, v := range []string{r.Header.Get("Last-Event-ID"), q.Get("last_event_id")} {
		if v == "" {
			continue
		}
		n, err := parseSeq(v)
		if err != nil {
			return err
		}
		after, resume = n, true
		break
	}
	tenant, uid := p.user.TenantID, p.user.ID
	if anon != "" {
		tenant = anon
	}
	msg := message
	if anon != "" {
		msg = func(e store.Event) sse.Message { m := message(e); m.Anon = anonRecord(e); return m }
	}
	backlog := func(send func(sse.Message) error) (uint64, error) {
		// Registered with the hub by now: a revocation from here on closes this stream, and
		// one that came before is seen here.
		// A kill that came meanwhile found the stream, but ends it with this error, before
		// its final message is written: send that here.
		if anon != "" {
			// No user, no session: nothing to kill.
		} else if u, err := s.db.UserByID(uid); err != nil || u.Revoked {
			send(sse.KillMessage("user revoked"))
			return 0, sse.ErrUserClosed
		}
		if p.jti != "" && s.bl.refused(p.jti, s.clock.Now().Unix()) {
			send(sse.KillMessage("session killed"))
			return 0, sse.ErrKilled
		}
		if resume {
			return s.db.Since(tenant, after, func(e store.Event) error { return send(msg(e)) })
		}
		events, seq, err := s.db.State(tenant)
		if err != nil {
			return 0, err
		}
		for i, e := range events {
			m := msg(e)
			// Only the last state message carries an id, the tenant's sequence when the state
			// was read: a client resuming from it gets exactly what followed; one cut off
			// halfway through the state has no id yet and gets the whole state again.
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
	var expires time.Time
	if p.exp != 0 {
		// A stream lasts no longer than its token (Basic credentials have no expiry): the
		// client reconnects with a fresh one and resumes with Last-Event-ID.
		expires = time.Unix(p.exp, 0)
	}
	err := s.hub.Serve(r.Context(), w, sse.StreamOptions{
		Tenant: tenant, User: uid, DataOnly: q.Get("format") == "data", Backlog: backlog,
		Session: p.jti, Username: p.user.Username, Remote: r.RemoteAddr, Transport: sse.TransportSSE,
		Expires: expires, Anonymous: anon != "",
		// Idle HTTP/1.x streams live in the hub with no goroutine and no net/http buffers
		// (under 1 KB each instead of ~26 KB); Shutdown's hub.Close ends them.
		Detach: true,
	})
	if err != nil && !errors.Is(err, sse.ErrClosed) && !errors.Is(err, sse.ErrUserClosed) && !errors.Is(err, sse.ErrKilled) && !errors.Is(err, sse.ErrExpired) &&
		!errors.Is(err, sse.ErrSlow) && r.Context().Err() == nil {
		s.cfg.Logger.Debug("httpbridge: stream ended", "tenant", tenant, "user", uid, "err", err)
	}
	return nil
}
