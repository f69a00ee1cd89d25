// Package httpserve serves an HTTP handler on a listener with what every rtbus HTTP listener
// needs against clients that never finish: a deadline for reading each whole request (headers
// and body), a write deadline, idle keep-alive connections closed, and a cap on concurrent
// connections. Long-lived responses (streams, long polls) lift or extend their own deadlines
// with Stream and Hold.
package httpserve

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Defaults of Options.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	// DefaultMaxConns is above the 10,000 idle streams the SSE benchmark opens; each
	// connection holds a file descriptor, so keep it under the process's limit.
	DefaultMaxConns = 16384
)

// Options configure a Server. The zero Options use the defaults.
type Options struct {
	// ReadHeaderTimeout bounds reading a request's headers; 0 = DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a whole request, headers and body, from its first byte;
	// 0 = DefaultBodyTimeout (30 s: a 1 MiB body at 35 KB/s). A body still arriving then is
	// cut: the handler's read fails (rtbus answers 408) and the connection is closed.
	BodyTimeout time.Duration
	// WriteTimeout bounds the handling of a request and the writing of its response, from the
	// end of its headers; 0 = DefaultWriteTimeout. It should exceed BodyTimeout.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new request for that long;
	// 0 = DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxConns caps the connections served at once (streams included), 0 = DefaultMaxConns,
	// <0 = no cap. Connections beyond it are answered 503 and closed at once, and a log line
	// (at most one every LogEvery) says so.
	MaxConns int
	// TLS, if set, serves HTTPS (HTTP/2 offered) with it.
	TLS *tls.Config
	// Name names the listener in log lines ("http", "internal"); empty = "http".
	Name string
	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

// LogEvery is the least time between two log lines about refused connections on a listener.
const LogEvery = 10 * time.Second

// Server is an http.Server with the deadlines and the connection cap of its Options.
type Server struct {
	hs   *http.Server
	opts Options
}

// New returns a Server of h with o's deadlines; Serve starts it.
func New(h http.Handler, o Options) *Server {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Name == "" {
		o.Name = "http"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Server{opts: o, hs: &http.Server{
		Handler:           h,
		TLSConfig:         o.TLS,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.BodyTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}}
}

// Options returns the options in effect, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Serve accepts connections on ln, up to MaxConns at once, until Shutdown or Close; it then
// returns http.ErrServerClosed. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	ln = Limit(ln, s.opts.MaxConns, s.opts.TLS == nil, s.opts.Name, s.opts.Logger)
	if s.opts.TLS != nil {
		return s.hs.ServeTLS(ln, "", "")
	}
	return s.hs.Serve(ln)
}

// Shutdown stops accepting, closes idle connections and waits for active ones until ctx ends
// (http.Server.Shutdown). Hijacked connections (streams) are their owner's to end.
func (s *Server) Shutdown(ctx context.Context) error { return s.hs.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.hs.Close() }

// Stream lifts the read and write deadlines of the request's connection, for a response that
// lasts as long as its client stays (SSE, WebSocket): the server's body and write deadlines
// would otherwise end it. Call it before the handler hijacks the connection, if it does. It
// reports whether the deadlines could be lifted.
func Stream(w http.ResponseWriter) bool {
	rc := http.NewResponseController(w)
	return setDeadlines(rc, time.Time{}, time.Time{})
}

// Hold extends the request's read and write deadlines by d from now plus the server's own
// (Options), for a response that waits up to d before it answers (a long poll).
func Hold(w http.ResponseWriter, r *http.Request, d time.Duration) bool {
	rd, wd := DefaultBodyTimeout, DefaultWriteTimeout
	if hs, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok {
		if hs.ReadTimeout > 0 {
			rd = hs.ReadTimeout
		}
		if hs.WriteTimeout > 0 {
			wd = hs.WriteTimeout
		}
	}
	now := time.Now()
	return setDeadlines(http.NewResponseController(w), now.Add(d+rd), now.Add(d+wd))
}

func setDeadlines(rc *http.ResponseController, read, write time.Time) bool {
	err1 := rc.SetReadDeadline(read)
	err2 := rc.SetWriteDeadline(write)
	return !errors.Is(err1, http.ErrNotSupported) && !errors.Is(err2, http.ErrNotSupported) && err1 == nil && err2 == nil
}
