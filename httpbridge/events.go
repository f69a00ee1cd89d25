package httpbridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// insertRequest is the body of POST /insert and of the bus insert topic.
type insertRequest struct {
	Event        string          `json:"event"`
	Data         json.RawMessage `json:"data"`
	TenantID     string          `json:"tenant_id"`
	CollectionID string          `json:"collection_id"`
	UserID       string          `json:"user_id"` // bus inserts only
	Timestamp    timestamp       `json:"timestamp"`
}

func checkEventName(n string) error {
	if n == "" || !utf8.ValidString(n) || utf8.RuneCountInString(n) > 256 {
		return errorf(http.StatusBadRequest, "event must be 1-256 characters of UTF-8")
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return errorf(http.StatusBadRequest, "event must not contain control characters")
		}
	}
	return nil
}

// parseTimestamp accepts a JSON number of whole Unix seconds.
func parseTimestamp(n json.Number) (int64, error) {
	if i, err := n.Int64(); err == nil {
		if i < 0 {
			return 0, errorf(http.StatusBadRequest, "timestamp must not be negative")
		}
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f < 0 || f > math.MaxInt64/2 {
		return 0, errorf(http.StatusBadRequest, "timestamp must be whole Unix seconds, got %s", n)
	}
	return int64(f), nil
}

// insertEvent validates req for tenant and stores it: published at once unless its timestamp
// is in the future, in which case the scheduler is told. With an idempotency key (""
// without), the event's id is the key's, and a repeat of a stored insert returns the stored
// record (422 if the repeat asks for another event).
func (s *Server) insertEvent(ctx context.Context, tenant, userID, key string, req insertRequest) (store.Event, error) {
	start := time.Now()
	if err := checkEventName(req.Event); err != nil {
		return store.Event{}, err
	}
	if len(bytes.TrimSpace(req.Data)) == 0 {
		return store.Event{}, errorf(http.StatusBadRequest, "data is required (any JSON value)")
	}
	var data bytes.Buffer
	if err := json.Compact(&data, req.Data); err != nil {
		return store.Event{}, errorf(http.StatusBadRequest, "data is not valid JSON: %v", err)
	}
	if err := checkText(data.Bytes()); err != nil {
		// Bodies were checked whole; this guards the other ways in (bus, internal API).
		return store.Event{}, errorf(http.StatusBadRequest, "data is not valid UTF-8 text")
	}
	collectionGiven := req.CollectionID != ""
	if !collectionGiven {
		req.CollectionID = newUUID()
	} else if err := checkCollection(req.CollectionID); err != nil {
		return store.Event{}, err
	}
	now := s.clock.Now().Unix()
	ts := now
	if req.Timestamp != "" {
		var err error
		if ts, err = parseTimestamp(json.Number(req.Timestamp)); err != nil {
			return store.Event{}, err
		}
	}
	e := store.Event{
		ID: newUUID(), Event: req.Event, TenantID: tenant, CollectionID: req.CollectionID,
		UserID: userID, Timestamp: ts, Data: data.Bytes(),
	}
	if key != "" {
		e.ID = idempotentID(tenant, userID, key)
	}
	stored, err := s.evlog.Insert(ctx, e, ts <= now)
	repeat := errors.Is(err, store.ErrExists)
	if err != nil && !repeat {
		return store.Event{}, storeError(err)
	}
	if key != "" {
		// Cluster mode cannot always tell a repeat (the stream drops it and acknowledges the
		// first write): every keyed answer is checked against the request.
		if err := sameInsert(stored, e, collectionGiven, req.Timestamp != ""); err != nil {
			return store.Event{}, err
		}
	} else if repeat { // a random id met another: never in practice
		return store.Event{}, err
	}
	if !repeat {
		s.metrics.insert(start)
	}
	return stored, nil
}

// POST /insert.
func (s *Server) insert(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r, false)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var req insertRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.TenantID != "" && req.TenantID != p.user.TenantID {
		return errorf(http.StatusForbidden, "tenant_id %q is not your tenant", req.TenantID)
	}
	req.UserID = ""
	e, err := s.insertEvent(r.Context(), p.user.TenantID, p.user.ID, key, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": e})
	return nil
}

// current keeps the published, uncancelled events: what the tenant's streams have seen.
func current(events []store.Event) []store.Event {
	out := events[:0]
	for _, e := range events {
		if e.Published && !e.Cancelled {
			out = append(out, e)
		}
	}
	return out
}

func nonNil(events []store.Event) []store.Event {
	if events == nil {
		return []store.Event{}
	}
	return events
}

// GET /collections/{collection_id}: the published events of one collection of the caller's
// tenant, ascending timestamp. Scheduled events appear once published.
func (s *Server) collection(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r, false)
	if err != nil {
		return err
	}
	events, err := s.db.Collection(p.user.TenantID, r.PathValue("collection_id"))
	if err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": nonNil(current(events))})
	return nil
}

// GET /user_events: the caller's profile collection (published events) and every event the
// caller inserted, scheduled and cancelled ones included (so they can be listed and cancelled).
func (s *Server) userEvents(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r, false)
	if err != nil {
		return err
	}
	info, err := s.db.Collection(p.user.TenantID, p.user.CollectionID)
	if err != nil {
		return storeError(err)
	}
	mine, err := s.db.UserEvents(p.user.TenantID, p.user.ID)
	if err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"info": nonNil(current(info)), "events": nonNil(mine)})
	return nil
}

// GET or POST /cancel/{id}: cancels a scheduled event of the caller's tenant.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r, false)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	e, err := s.evlog.Cancel(r.Context(), p.user.TenantID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "no event %q", id)
	case errors.Is(err, store.ErrPublished):
		return errorf(http.StatusConflict, "event %q is already published", id)
	case errors.Is(err, store.ErrCancelled):
		return errorf(http.StatusConflict, "event %q is already cancelled", id)
	case err != nil:
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": e})
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return formatUUID(b, 4)
}

// formatUUID sets the version and RFC 4122 variant bits of b and formats it the usual way.
func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// parseSeq parses a Last-Event-ID.
func parseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "Last-Event-ID %q is not a publication id", s)
	}
	return n, nil
}
