package httpbridge

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge/internal/jskv"
	"github.com/rtbus/rtbus/httpbridge/internal/ntpclock"
	"github.com/rtbus/rtbus/httpbridge/internal/sse"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// Server is the HTTP bridge: the routes of HTTP.md over one event store, one stream hub and
// one scheduler, linked to a bus. Create it with New, serve Handler, end with Shutdown.
type Server struct {
	cfg       Config
	clock     Clock
	ntp       *ntpclock.Clock // nil when Config.Clock is set
	db        *store.DB
	hub       *sse.Hub
	fan       fanout // every sender of what is not stored goes through it (fanout.go)
	signer    *signer
	pw        *passwords
	adminHash [sha256.Size]byte
	handler   http.Handler
	internal  http.Handler
	metrics   *metrics
	evlog     eventLog // the write path of events: localLog or clusterLog
	// Cluster mode: the log's epoch, the cursor prefix "<epoch>." (both "" on a single
	// node), and the last sequence replayed before serving (not announced again).
	epoch, idPrefix string
	quietSeq        uint64
	acct            accounts // users, blacklist, tenant settings: db, or kv in cluster mode
	kv              *jskv.Accounts
	link            *busLink
	bl              blacklist
	tokens          tokenCache // tokens whose signature and claims passed
	public          publicTenants
	stopPrune       func() bool // under mu
	// Publications go from the store's commit pipeline to one dispatcher goroutine, in order,
	// so that fanning out to thousands of streams does not hold up the next insert.
	pubs     chan store.Event
	pubsDone chan struct{}

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup
	closed   chan struct{}
	closeErr error
}

// New opens (or creates) the data directory, generates the secrets it lacks, opens the
// store, publishes what fell due while the server was down, and links to b (nil: no bus
// link). In cluster mode (Config.Cluster) it also opens the cluster's event stream and
// returns once this node's index has caught up with it (rebuilding it first if needed).
func New(b *bus.Broker, cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("httpbridge: data directory: %w", err)
	}
	kv, err := openClusterAccounts(&cfg)
	if err != nil {
		return nil, err
	}
	// closeKV undoes openClusterAccounts when New fails.
	closeKV := func() {
		if kv != nil {
			kv.Close()
		}
	}
	secret, admin, err := loadSecrets(&cfg, kv)
	if err != nil {
		closeKV()
		return nil, err
	}
	sg, err := newSigner(&cfg, secret)
	if err != nil {
		closeKV()
		return nil, err
	}
	pw, err := newPasswords(&cfg)
	if err != nil {
		closeKV()
		return nil, err
	}
	s := &Server{cfg: cfg, signer: sg, pw: pw, adminHash: sha256.Sum256([]byte(admin)), kv: kv, closed: make(chan struct{})}
	s.tokens.max = maxCachedTokens
	s.clock = cfg.Clock
	if s.clock == nil {
		s.ntp = ntpclock.New(ntpclock.Options{Servers: cfg.NTPServers, Logger: log})
		s.clock = ntpClock{s.ntp}
	}
	s.hub = sse.NewHub(sse.HubOptions{QueueSize: cfg.StreamQueue, KeepAlive: cfg.KeepAlive, Now: s.clock.Now})
	if b != nil {
		if s.link, err = newBusLink(s, b); err != nil {
			s.hub.Close()
			s.closeClock()
			closeKV()
			return nil, err
		}
	}
	s.metrics = newMetrics(s, b)
	s.pubs, s.pubsDone = make(chan store.Event, 1024), make(chan struct{})
	go s.dispatch()
	s.db, err = store.Open(filepath.Join(cfg.DataDir, "db"), store.Options{OnPublish: s.onPublish, Logger: log})
	if err != nil {
		close(s.pubs)
		s.hub.Close()
		s.link.close()
		s.closeClock()
		closeKV()
		return nil, fmt.Errorf("httpbridge: %w", err)
	}
	s.acct = s.db
	if kv != nil {
		s.acct = kv
	}
	err = s.loadSessions()
	if err == nil {
		err = s.loadTenants()
	}
	if err != nil {
		s.db.Close()
		close(s.pubs)
		s.hub.Close()
		s.link.close()
		s.closeClock()
		closeKV()
		return nil, fmt.Errorf("httpbridge: loading sessions and tenants: %w", err)
	}
	if kv != nil {
		// From here on, every node's account changes reach this node's streams.
		kv.Watch(s.accountHooks())
	}
	if cfg.Cluster != nil {
		if s.evlog, err = newClusterLog(s); err != nil {
			s.db.Close()
			close(s.pubs)
			s.hub.Close()
			s.link.close()
			s.closeClock()
			closeKV()
			return nil, fmt.Errorf("httpbridge: cluster event log: %w", err)
		}
	} else {
		s.evlog = newLocalLog(s)
	}
	if s.fan, err = newFanout(s); err != nil {
		s.Close()
		return nil, fmt.Errorf("httpbridge: cluster fan-out: %w", err)
	}
	s.handler = s.routes()
	s.internal = s.internalRoutes()
	if s.link != nil {
		s.link.start()
	}
	return s, nil
}

func (s *Server) closeClock() {
	if s.ntp != nil {
		s.ntp.Close()
	}
}

// Handler serves the routes of HTTP.md, with CORS and the body limit.
func (s *Server) Handler() http.Handler { return s.handler }

// Close is Shutdown without waiting for requests in progress.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return s.Shutdown(ctx)
}

// Shutdown ends every stream, refuses new requests (503), waits for requests in progress
// until ctx ends, stops the scheduler and the bus link, then flushes and closes the store.
// Later calls return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.closed
		return s.closeErr
	}
	s.closing = true
	if s.stopPrune != nil {
		s.stopPrune()
	}
	s.mu.Unlock()

	if s.fan != nil {
		s.fan.Close()
	}
	s.hub.Close()
	if s.evlog != nil {
		s.evlog.close()
	}
	if s.kv != nil {
		s.kv.Close()
	}
	s.link.close()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	s.closeErr = s.db.Close()
	close(s.pubs) // the store publishes nothing more
	<-s.pubsDone
	s.closeClock()
	close(s.closed)
	return s.closeErr
}

// enter counts a request in progress; false once shutting down.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.inflight.Add(1)
	return true
}

// serveHTTP wraps every route: shutdown, CORS, body limit, streams' deadlines.
func (s *Server) serveHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cors(w, r) {
			return
		}
		if !s.enter() {
			writeError(w, errorf(http.StatusServiceUnavailable, "server shutting down"))
			return
		}
		defer s.inflight.Done()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		}
		liftDeadlines(w, r)
		next.ServeHTTP(w, r)
	})
}

// cors sets the CORS headers and answers preflight requests (true when it did).
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	allowed := len(s.cfg.Origins) == 0
	for _, o := range s.cfg.Origins {
		if o == "*" || o == origin {
			allowed = true
			break
		}
	}
	h.Add("Vary", "Origin")
	if allowed {
		if len(s.cfg.Origins) == 0 || contains(s.cfg.Origins, "*") {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	if !allowed {
		writeError(w, errorf(http.StatusForbidden, "origin %q not allowed", origin))
		return true
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, "+IdempotencyKeyHeader)
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
	return true
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// route is a handler that answers with a value or an error.
type route func(w http.ResponseWriter, r *http.Request) error

// methods restricts a route to the given methods (405 JSON otherwise) and writes its error.
func methods(h route, allowed ...string) http.Handler {
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !contains(allowed, r.Method) {
			w.Header().Set("Allow", allow)
			writeError(w, errorf(http.StatusMethodNotAllowed, "method %s not allowed: use %s", r.Method, allow))
			return
		}
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	})
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	post := func(path string, h route) { mux.Handle(path, methods(h, http.MethodPost)) }
	get := func(path string, h route) { mux.Handle(path, methods(h, http.MethodGet)) }
	post("/users", s.signup)
	post("/create_user", s.createUser)
	post("/login", s.login)
	post("/logout", s.logout)
	post("/insert", s.insert)
	get("/collections/{collection_id}", s.collection)
	get("/user_events", s.userEvents)
	mux.Handle("/cancel/{id}", methods(s.cancel, http.MethodGet, http.MethodPost))
	get("/events/{tenant_id}", s.streamRoute(sse.TransportSSE, true))
	get("/sse", s.streamRoute(sse.TransportSSE, false))
	get("/ws/{tenant_id}", s.streamRoute(sse.TransportWS, true))
	get("/ws", s.streamRoute(sse.TransportWS, false))
	get("/poll/{tenant_id}", s.streamRoute(sse.TransportPoll, true))
	get("/poll", s.streamRoute(sse.TransportPoll, false))
	get("/events", s.defaultStream)
	get("/public/events/{tenant_id}", s.publicStream(sse.TransportSSE))
	get("/public/ws/{tenant_id}", s.publicStream(sse.TransportWS))
	get("/public/poll/{tenant_id}", s.publicStream(sse.TransportPoll))
	post("/tenant_settings", s.tenantSettings)
	get("/verify", s.verify)
	mux.Handle("/healthz", methods(s.healthz, http.MethodGet, http.MethodHead))
	mux.Handle("/readyz", methods(s.readyz, http.MethodGet, http.MethodHead))
	post("/revoke_user", s.revokeUser(true))
	post("/unrevoke_user", s.revokeUser(false))
	post("/list_users", s.listUsers)
	post("/get_user", s.getUser)
	clientRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return s.serveHTTP(s.metrics.count(mux))
}
