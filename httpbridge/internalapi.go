package httpbridge

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"
)

// InternalHandler serves the internal API, for backends only: it must be served on its own
// listener, never the public one. Every route but /healthz and /readyz needs
// "Authorization: Bearer <admin token>".
//
//	POST   /v1/messages               {"tenant_id","user"?,"event","data"} → 202 {"delivered":N}
//	POST   /v1/events                 an /insert body + "tenant_id","user" → 200 {"event":record}
//	POST   /v1/session-blacklist      {"session_id","validity_seconds"} → 201
//	GET    /v1/session-blacklist/{id} → 200 {"session_id","expires"}; 404
//	DELETE /v1/session-blacklist/{id} → 204; 404
//	GET    /v1/connections?tenant_id=&user= → 200 [{"conn","transport","user",…}]
//	GET    /v1/cluster                → 200 cluster.Status; 404 on a single node
//	GET    /metrics                   Prometheus text format
//	GET    /healthz, /readyz
func (s *Server) InternalHandler() http.Handler { return s.internal }

func (s *Server) internalRoutes() http.Handler {
	mux := http.NewServeMux()
	admin := func(h route) route {
		return func(w http.ResponseWriter, r *http.Request) error {
			if err := s.checkAdminBearer(r); err != nil {
				return err
			}
			return h(w, r)
		}
	}
	handle := func(path string, h route, m ...string) { mux.Handle(path, methods(admin(h), m...)) }
	handle("/v1/messages", s.v1Messages, http.MethodPost)
	handle("/v1/events", s.v1Events, http.MethodPost)
	handle("/v1/session-blacklist", s.v1Blacklist, http.MethodPost)
	handle("/v1/session-blacklist/{jti}", s.v1BlacklistEntry, http.MethodGet, http.MethodDelete)
	handle("/v1/connections", s.v1Connections, http.MethodGet)
	handle("/v1/cluster", s.v1Cluster, http.MethodGet)
	metrics := s.metrics.handler()
	handle("/metrics", func(w http.ResponseWriter, r *http.Request) error { metrics.ServeHTTP(w, r); return nil }, http.MethodGet)
	mux.Handle("/healthz", methods(s.healthz, http.MethodGet, http.MethodHead))
	mux.Handle("/readyz", methods(s.readyz, http.MethodGet, http.MethodHead))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	counted := s.metrics.count(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			writeError(w, errorf(http.StatusServiceUnavailable, "server shutting down"))
			return
		}
		defer s.inflight.Done()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		}
		counted.ServeHTTP(w, r)
	})
}

// checkAdminBearer checks "Authorization: Bearer <admin token>" in constant time.
func (s *Server) checkAdminBearer(r *http.Request) error {
	h := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return errorf(http.StatusUnauthorized, "missing Authorization: Bearer <admin token>")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], s.adminHash[:]) != 1 {
		return errorf(http.StatusUnauthorized, "bad admin token")
	}
	return nil
}

// messageRequest is the body of POST /v1/messages.
type messageRequest struct {
	TenantID string          `json:"tenant_id"`
	User     string          `json:"user"`
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
}

// POST /v1/messages: an ephemeral message to a tenant's streams or a user's.
func (s *Server) v1Messages(w http.ResponseWriter, r *http.Request) error {
	var req messageRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	n, err := s.pushTo(req.TenantID, req.User, req.Event, req.Data)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"delivered": n})
	return nil
}

// eventRequest is the body of POST /v1/events: an insert on behalf of a user.
type eventRequest struct {
	insertRequest
	User string `json:"user"`
}

// POST /v1/events: a durable insert on behalf of a user, as that user's POST /insert.
func (s *Server) v1Events(w http.ResponseWriter, r *http.Request) error {
	var req eventRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.TenantID == "" {
		return errorf(http.StatusBadRequest, "tenant_id is required")
	}
	if err := checkTenant(req.TenantID); err != nil {
		return err
	}
	if req.User == "" {
		return errorf(http.StatusBadRequest, "user is required: the username or id on whose behalf the event is inserted")
	}
	if req.UserID != "" {
		return errorf(http.StatusBadRequest, "user_id is not read here: name the user with user (a username or id)")
	}
	u, err := s.userOf(req.TenantID, req.User)
	if err != nil {
		return err
	}
	e, err := s.insertEvent(r.Context(), u.TenantID, u.ID, "", req.insertRequest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": e})
	return nil
}

// maxValidity bounds validity_seconds: no token lives longer.
const maxValidity = 10 * 365 * 24 * 3600

// blacklistRequest is the body of POST /v1/session-blacklist.
type blacklistRequest struct {
	SessionID       string          `json:"session_id"`
	ValiditySeconds json.RawMessage `json:"validity_seconds"`
}

// POST /v1/session-blacklist: kills a session for validity_seconds.
func (s *Server) v1Blacklist(w http.ResponseWriter, r *http.Request) error {
	var req blacklistRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.SessionID == "" {
		return errorf(http.StatusBadRequest, "session_id is required")
	}
	var v float64
	err := json.Unmarshal(req.ValiditySeconds, &v) // a JSON number; not a string
	if len(req.ValiditySeconds) == 0 || err != nil || v <= 0 || v != math.Trunc(v) || v > maxValidity {
		return errorf(http.StatusBadRequest, "validity_seconds must be a whole number of seconds, 1 to %d", maxValidity)
	}
	exp := s.clock.Now().Add(time.Duration(v) * time.Second)
	if err := s.killSession(req.SessionID, exp); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"session_id": req.SessionID, "expires": exp.Unix()})
	return nil
}

// GET, DELETE /v1/session-blacklist/{jti}.
func (s *Server) v1BlacklistEntry(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("jti")
	exp, ok := s.bl.get(id)
	if !ok || exp <= s.clock.Now().Unix() {
		return errorf(http.StatusNotFound, "session %q is not blacklisted", id)
	}
	if r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, map[string]any{"session_id": id, "expires": exp})
		return nil
	}
	if ok, err := s.reviveSession(id); err != nil {
		return err
	} else if !ok {
		return errorf(http.StatusNotFound, "session %q is not blacklisted", id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// connView is one entry of GET /v1/connections.
type connView struct {
	Conn      uint64 `json:"conn"`
	Transport string `json:"transport"`
	User      string `json:"user"`
	Username  string `json:"username"`
	TenantID  string `json:"tenant_id"`
	Session   string `json:"session"`
	Since     int64  `json:"since"`
	Remote    string `json:"remote"`
	Node      string `json:"node,omitempty"` // cluster mode: the node the stream is connected to
}

// GET /v1/connections?tenant_id=&user=: the open streams (presence). In cluster mode, of
// every node that answered within the deadline: Rtbus-Nodes names them (this one included),
// Rtbus-Nodes-Missing the nodes known to be there that did not answer, and
// Rtbus-Nodes-Truncated those that had more streams than one answer holds.
func (s *Server) v1Connections(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	tenant, user := q.Get("tenant_id"), q.Get("user")
	uid := ""
	if user != "" {
		u, err := s.userOf(tenant, user)
		if err != nil {
			return err
		}
		uid = u.ID
	}
	p := s.fan.Conns(tenant, uid)
	out := make([]connView, len(p.Conns))
	for i, c := range p.Conns {
		out[i] = connView{c.ID, c.Transport, c.User, c.Username, c.Tenant, c.Session, c.Since.Unix(), c.Remote, c.Node}
	}
	h := w.Header()
	for name, nodes := range map[string][]string{"Rtbus-Nodes": p.Nodes, "Rtbus-Nodes-Missing": p.Missing, "Rtbus-Nodes-Truncated": p.Truncated} {
		if len(nodes) > 0 {
			h.Set(name, strings.Join(nodes, ", "))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /healthz: the process answers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// GET /readyz: the store is open, the server is not shutting down, and Config.Ready (the
// listeners, in rtbusd) says yes.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.db.Ping(); err != nil {
		return errorf(http.StatusServiceUnavailable, "store not open")
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return errorf(http.StatusServiceUnavailable, "not ready: %v", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
