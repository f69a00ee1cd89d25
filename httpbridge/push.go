package httpbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// push hands an ephemeral message to the tenant's streams (or to those of the user with
// that id), on every node: it is not stored, has no publication id, and is not replayed on
// resume. With count it returns how many streams it reached (fanout.Push says how in cluster
// mode). The bus push topics, PushMethod and POST /v1/messages all come here.
func (s *Server) push(tenant, userID, event string, raw json.RawMessage, count bool) (int, error) {
	if err := checkTenant(tenant); err != nil {
		return 0, err
	}
	if err := checkEventName(event); err != nil {
		return 0, err
	}
	var data bytes.Buffer
	if len(bytes.TrimSpace(raw)) == 0 {
		data.WriteString("null")
	} else if err := json.Compact(&data, raw); err != nil {
		return 0, errorf(http.StatusBadRequest, "data is not valid JSON: %v", err)
	}
	// A stream sends the pushed value as it is, whatever its format: an ephemeral message has
	// no record to wrap it in (GATEWAY.md), and no id marks it as one.
	return s.fan.Push(sse.Message{Tenant: tenant, User: userID, Event: event, Record: data.Bytes(), Data: data.Bytes()}, count), nil
}

// pushTo is push with the user given by username or id ("": the whole tenant).
func (s *Server) pushTo(tenant, user, event string, data json.RawMessage) (int, error) {
	if tenant == "" {
		return 0, errorf(http.StatusBadRequest, "tenant_id is required")
	}
	uid := ""
	if user != "" {
		u, err := s.userOf(tenant, user)
		if err != nil {
			return 0, err
		}
		uid = u.ID
	}
	return s.push(tenant, uid, event, data, true)
}

// userOf finds a user of tenant by id or username: 404 if there is none.
func (s *Server) userOf(tenant, user string) (store.User, error) {
	u, err := s.acct.UserByID(user)
	if errors.Is(err, store.ErrNotFound) {
		u, err = s.acct.UserByName(user)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && tenant != "" && u.TenantID != tenant) {
		return store.User{}, errorf(http.StatusNotFound, "no user %q in tenant %q", user, tenant)
	} else if err != nil {
		return store.User{}, storeError(err)
	}
	return u, nil
}
