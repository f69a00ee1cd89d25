package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

// Config configures a listener. The zero Config uses the defaults below.
type Config struct {
	WriteBuffer  int           // bytes buffered per connection before a write (default 8192)
	FlushDelay   time.Duration // how long non-realtime frames may wait to be written together (default 10µs; negative: none)
	Timeout      time.Duration // handshake and write timeout (a write may take up to a quarter more); pings every Timeout/2, clients silent for 1.25×Timeout (up to a quarter more) are dropped (default 1s)
	PayloadLimit int           // largest frame body accepted, in bytes (default 16 MiB)
	// IncompleteLimit caps the bytes that the server's connections hold together for frames
	// larger than a connection's own 64 KiB read buffer while those frames arrive (default
	// 64 MiB; raised to one largest frame, PayloadLimit + 9, if below). A connection whose
	// frame would pass it stops reading until others free enough, for up to Timeout, and is
	// then closed. The total is the server's, across its listeners; each listener's
	// connections grow only while it is under their own Config's cap.
	IncompleteLimit int
	Policy          *aaa.Map     // access policy for this listener's clients; nil allows everyone
	UnixMode        os.FileMode  // file mode of a UNIX socket (0: the umask's); other listeners have no file
	Logger          *slog.Logger // where dropped connections are reported (default slog.Default())
	// TLS, when set, makes ListenTCP and ListenWebSocket serve TLS (wss:// for WebSocket).
	// Listen uses it for tls:// and wss:// addresses only, so that one Config serves
	// plain and TLS listeners alike.
	TLS *tls.Config
}

// Defaults of Config.
const (
	DefaultWriteBuffer     = 8192
	DefaultFlushDelay      = 10 * time.Microsecond
	DefaultTimeout         = time.Second
	DefaultPayloadLimit    = 16 << 20
	DefaultIncompleteLimit = 64 << 20
)

func (c Config) withDefaults() Config {
	if c.WriteBuffer <= 0 {
		c.WriteBuffer = DefaultWriteBuffer
	}
	if c.FlushDelay == 0 {
		c.FlushDelay = DefaultFlushDelay
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PayloadLimit <= 0 {
		c.PayloadLimit = DefaultPayloadLimit
	}
	if c.IncompleteLimit <= 0 {
		c.IncompleteLimit = DefaultIncompleteLimit
	}
	// One largest frame can always arrive, once the others have freed enough.
	c.IncompleteLimit = max(c.IncompleteLimit, c.PayloadLimit+clientHeaderLen)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server serves bus clients over stream sockets. Close stops its listeners and connections.
type Server struct {
	b *bus.Broker

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup

	incomplete pending // bytes held for frames larger than a read buffer (Config.IncompleteLimit)
}

// NewServer returns a server that registers its clients with b.
func NewServer(b *bus.Broker) *Server {
	return &Server{b: b, listeners: make(map[net.Listener]struct{}), conns: make(map[net.Conn]struct{})}
}

// ErrServerClosed is returned by the Listen methods after Close.
var ErrServerClosed = errors.New("transport: server closed")

// ErrNoTLSConfig is returned by Listen for a tls:// or wss:// address without Config.TLS.
var ErrNoTLSConfig = errors.New("transport: a TLS address needs Config.TLS (a certificate)")

// Listen serves on addr by the BUS/RT address convention (WIRE.md §1): a path starting with
// "/" or ending in .sock, .socket or .ipc is a UNIX socket (with file mode cfg.UnixMode), ws://host:port
// a WebSocket, wss://host:port a WebSocket over TLS, anything else host:port TCP. As an rtbus
// extension of the convention, tls://host:port is TCP over TLS. TLS addresses use cfg.TLS;
// the others ignore it.
func (s *Server) Listen(addr string, cfg Config) (net.Listener, error) {
	scheme, hostport, tlsWanted := splitScheme(addr)
	if tlsWanted && cfg.TLS == nil {
		return nil, fmt.Errorf("listen %s: %w", addr, ErrNoTLSConfig)
	}
	if !tlsWanted {
		cfg.TLS = nil
	}
	switch {
	case scheme == "ws" || scheme == "wss":
		return s.ListenWebSocket(hostport, cfg)
	case scheme == "" && isUnixAddr(addr):
		return s.ListenUnix(addr, cfg)
	}
	return s.ListenTCP(hostport, cfg)
}

// splitScheme splits a ws://, wss:// or tls:// address into its scheme and host:port (a
// trailing path of a WebSocket address is dropped: every path is served).
func splitScheme(addr string) (scheme, hostport string, tls bool) {
	for _, sc := range []string{"ws", "wss", "tls"} {
		if rest, ok := strings.CutPrefix(addr, sc+"://"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				rest = rest[:i]
			}
			return sc, rest, sc != "ws"
		}
	}
	return "", addr, false
}

// isUnixAddr reports whether addr names a UNIX socket by the address convention.
func isUnixAddr(addr string) bool {
	return strings.HasPrefix(addr, "/") || strings.HasSuffix(addr, ".sock") ||
		strings.HasSuffix(addr, ".socket") || strings.HasSuffix(addr, ".ipc")
}

// ListenUnix serves on a UNIX socket at path, with the file mode cfg.UnixMode (0 keeps the
// umask's). A socket file already at path is replaced if it is stale; if a process answers
// on it, ListenUnix fails with an error wrapping ErrAddrInUse. Closing the listener removes
// the socket file, unless another listener has replaced it meanwhile.
func (s *Server) ListenUnix(path string, cfg Config) (net.Listener, error) {
	ln, err := listenUnix(path)
	if err != nil {
		return nil, err
	}
	if mode := cfg.UnixMode; mode != 0 {
		if err := os.Chmod(path, mode); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, s.serve(ln, bus.KindLocalIPC, path, cfg)
}

// ListenTCP serves on a TCP address, over TLS if cfg.TLS is set. Go's TCP connections have
// TCP_NODELAY set.
func (s *Server) ListenTCP(addr string, cfg Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		// The TLS handshake runs on the first read, within the BUS/RT handshake's deadline.
		ln = tls.NewListener(ln, cfg.TLS)
	}
	return ln, s.serve(ln, bus.KindTCP, ln.Addr().String(), cfg)
}

// ListenWebSocket serves on a TCP address where BUS/RT clients connect by WebSocket (any
// path), tunnelling the same byte stream in binary messages; over TLS (wss://) if cfg.TLS
// is set. Browsers' cross-origin requests are refused, as coder/websocket does by default.
func (s *Server) ListenWebSocket(addr string, cfg Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		tc := cfg.TLS.Clone()
		tc.NextProtos = []string{"http/1.1"} // WebSocket upgrades HTTP/1.1 only
		ln = tls.NewListener(ln, tc)
	}
	if err := s.addListener(ln); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	port := ln.Addr().String()
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			wc, err := websocket.Accept(w, r, nil)
			if err != nil {
				return // Accept has answered the request
			}
			// Message boundaries mean nothing here and NetConn streams, so the
			// payload limit applies to frames, not to messages.
			wc.SetReadLimit(-1)
			nc := newSock(websocket.NetConn(context.Background(), wc, websocket.MessageBinary))
			if !s.track(nc) {
				nc.Close()
				return
			}
			defer s.untrack(nc)
			src, _ := netip.ParseAddrPort(r.RemoteAddr)
			s.handle(nc, bus.KindWebSocket, port, src, cfg)
		}),
		ReadHeaderTimeout: cfg.Timeout,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer s.wg.Done()
		hs.Serve(ln)
	}()
	return ln, nil
}

func (s *Server) addListener(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	return nil
}

func (s *Server) serve(ln net.Listener, kind, port string, cfg Config) error {
	if err := s.addListener(ln); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			nc := newSock(c)
			if !s.track(nc) {
				nc.Close()
				return
			}
			go func() {
				defer s.untrack(nc)
				s.handle(nc, kind, port, peerAddr(nc), cfg)
			}()
		}
	}()
	return nil
}

func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[nc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops the listeners and waits for the connections to end by themselves, as they do
// once the broker is closed and they have written what was queued, until ctx ends; then it
// closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close stops the listeners, closes every connection and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func peerAddr(nc net.Conn) (ap netip.AddrPort) {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return ap
}
