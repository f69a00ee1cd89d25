package httpbridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// publicTenants are the tenants that serve anonymous read-only streams: those of
// Config.PublicTenants and those opened by POST /tenant_settings (stored).
type publicTenants struct {
	mu    sync.RWMutex
	fixed map[string]bool // Config.PublicTenants
	set   map[string]bool // from the store
}

func (s *Server) isPublic(tenant string) bool {
	s.public.mu.RLock()
	defer s.public.mu.RUnlock()
	return s.public.fixed[tenant] || s.public.set[tenant]
}

// tenantSettings is what the store keeps per tenant.
type tenantSettings struct {
	Public bool `json:"public"`
}

func (s *Server) loadTenants() error {
	s.public.fixed = map[string]bool{}
	s.public.set = map[string]bool{}
	check := s.cfg.PublicTenants
	if s.cfg.DefaultTenant != "" {
		check = append(check[:len(check):len(check)], s.cfg.DefaultTenant)
	}
	for _, t := range check {
		if checkTenant(t) != nil {
			return fmt.Errorf("tenant %q: a tenant id is 1-128 printable characters", t)
		}
	}
	for _, t := range s.cfg.PublicTenants {
		s.public.fixed[t] = true
	}
	return s.acct.TenantSettings(func(tenant string, v []byte) error {
		var ts tenantSettings
		if err := json.Unmarshal(v, &ts); err != nil {
			return err
		}
		if ts.Public {
			s.public.set[tenant] = true
		}
		return nil
	})
}

// anonRecord is the record of e as anonymous streams show it: without user_id.
func anonRecord(e store.Event) []byte {
	rec, err := json.Marshal(struct {
		ID           string          `json:"id"`
		Event        string          `json:"event"`
		TenantID     string          `json:"tenant_id"`
		CollectionID string          `json:"collection_id"`
		Timestamp    int64           `json:"timestamp"`
		Published    bool            `json:"published"`
		Cancelled    bool            `json:"cancelled"`
		Data         json.RawMessage `json:"data"`
		Seq          uint64          `json:"seq"`
	}{e.ID, e.Event, e.TenantID, e.CollectionID, e.Timestamp, e.Published, e.Cancelled, orNull(e.Data), e.Seq})
	if err != nil {
		return []byte(`{}`)
	}
	return rec
}

func orNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

// GET /public/{events,ws,poll}/{tenant_id}: the anonymous stream of a public tenant over
// transport; 404 for others.
func (s *Server) publicStream(transport string) route {
	return func(w http.ResponseWriter, r *http.Request) error {
		t := r.PathValue("tenant_id")
		if !s.isPublic(t) {
			return errorf(http.StatusNotFound, "tenant %q has no public stream", t)
		}
		return s.serveAnonymous(w, r, transport, t)
	}
}

// GET /events: with credentials, the caller's tenant (as /sse); without, the public stream of
// the default tenant, if it is public.
func (s *Server) defaultStream(w http.ResponseWriter, r *http.Request) error {
	if r.Header.Get("Authorization") != "" || r.URL.Query().Has("token") {
		return s.stream(w, r)
	}
	if t := s.cfg.DefaultTenant; t != "" && s.isPublic(t) {
		return s.serveAnonymous(w, r, sse.TransportSSE, t)
	}
	return errNoCredentials
}

// POST /tenant_settings {"admin_token","tenant_id","public"}: opens (or closes) a tenant's
// anonymous stream; kept in the store (in cluster mode, on every node).
func (s *Server) tenantSettings(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		AdminToken string `json:"admin_token"`
		TenantID   string `json:"tenant_id"`
		Public     *bool  `json:"public"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := s.checkAdmin(req.AdminToken); err != nil {
		return err
	}
	if err := checkTenant(req.TenantID); err != nil {
		return err
	}
	if req.Public == nil {
		return errorf(http.StatusBadRequest, "public is required (true or false)")
	}
	v, _ := json.Marshal(tenantSettings{Public: *req.Public})
	if err := s.acct.SetTenantSettings(req.TenantID, v); errors.Is(err, store.ErrInvalid) {
		return errorf(http.StatusBadRequest, "tenant_id cannot be stored")
	} else if err != nil {
		return storeError(err)
	}
	public := s.setPublic(req.TenantID, *req.Public)
	if !public {
		s.fan.CloseAnonymous(req.TenantID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant_id": req.TenantID, "public": public})
	return nil
}

// setPublic applies a tenant's stored setting (from this node's route, or in cluster mode
// from any node's) and returns whether the tenant is public now; the caller closes the
// anonymous streams of a tenant no longer public.
func (s *Server) setPublic(tenant string, set bool) bool {
	s.public.mu.Lock()
	if set {
		s.public.set[tenant] = true
	} else {
		delete(s.public.set, tenant)
	}
	public := s.public.fixed[tenant] || s.public.set[tenant]
	s.public.mu.Unlock()
	return public
}
