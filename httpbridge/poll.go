package httpbridge

import (
	"errors"
	"net/http"
	"strconv"
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
	limit bool // the reply is full
}

var errReplyFull = errors.New("poll reply full")

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
		if pr.n >= maxPollMessages || len(pr.b) >= maxPollBytes {
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
// client since its last poll on the same ?conn= come with it.
func (s *Server) servePoll(w http.ResponseWriter, r *http.Request, tenant string, message func(store.Event) sse.Message, prm streamParams, opts sse.StreamOptions) error {
	pc, err := s.hub.Poll(prm.conn, opts)
	if err != nil {
		return errorf(http.StatusServiceUnavailable, "server shutting down")
	}
	defer pc.Release()
	pr := &pollReply{b: append(make([]byte, 0, 512), `{"messages":[`...), f: opts.Filter, data: prm.dataOnly, last: prm.after}
	pc.Watch()
	if ok, resync := s.cursorOK(r.Context(), prm); !ok {
		pr.add(resync)
		prm.resume = false
	} else if prm.resume {
		if err := s.fromLog(pr, tenant, message); err != nil {
			return storeError(err)
		}
		if pr.last < prm.after { // Since answers a cursor ahead of the log with the log's last id
			pr.add(resyncMessage(prm.after, pr.last))
			prm.resume = false
		}
	}
	if !prm.resume {
		pr.last, err = s.backlog(r.Context(), tenant, message, streamParams{}, opts.Filter, func(m sse.Message) error { pr.add(m); return nil })
		if err != nil {
			return storeError(err)
		}
		eph, _, _, _, kerr := pc.Take(pr.last)
		if kerr != nil {
			return pollEnded(kerr)
		}
		return s.writePoll(w, pr, eph, pc)
	}
	deadline := time.Now().Add(prm.wait)
	for {
		eph, pubs, last, complete, kerr := pc.Take(pr.last)
		if kerr != nil {
			return pollEnded(kerr)
		}
		if pr.n == 0 && !pr.limit {
			if complete {
				for _, b := range pubs {
					pr.addRaw(b)
				}
				pr.last = last
			} else if err := s.fromLog(pr, tenant, message); err != nil {
				return storeError(err)
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
	}
}

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
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	return nil
}
