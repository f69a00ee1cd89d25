package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge"
	"github.com/rtbus/rtbus/internal/httpserve"
)

// httpOptions are the flags of the HTTP bridge (HTTP.md "Server").
type httpOptions struct {
	addr, dataDir, jwtSecret, adminToken, origins, ntp string
	jwtAlg, jwtKey                                     string
	jwtExpiry                                          time.Duration
	maxBody                                            int64
	serve                                              httpserve.Options
	gw                                                 gatewayOptions // internal.go
	cluster                                            clusterOptions // cluster.go
	loginUser, loginAddr                               int
	loginWindow, basicTTL                              time.Duration
}

// httpFlags defines the bridge's flags on fs, with their RTBUS_* environment defaults.
func httpFlags(fs *flag.FlagSet) (*httpOptions, error) {
	o := &httpOptions{}
	fs.StringVar(&o.addr, "http", "127.0.0.1:8080", "HTTP bridge address; off disables it (env RTBUS_HTTP)")
	fs.StringVar(&o.dataDir, "data-dir", defaultDataDir(), "HTTP bridge data directory: events, users, generated secrets (env RTBUS_DATA_DIR)")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "HMAC secret of the bridge's JWTs; empty: random, kept in the data directory (env RTBUS_JWT_SECRET)")
	fs.StringVar(&o.jwtAlg, "jwt-alg", httpbridge.DefaultAlgorithm, "algorithm of the bridge's JWTs: HS256, HS384, HS512 or RS256 (env RTBUS_JWT_ALG)")
	fs.StringVar(&o.jwtKey, "jwt-key", "", "RSA private key (PEM file) for -jwt-alg RS256 (env RTBUS_JWT_KEY)")
	o.jwtExpiry = httpbridge.DefaultJWTExpiry
	fs.Func("jwt-expiry", "lifetime of the bridge's JWTs: seconds, or a duration such as 1h (env RTBUS_JWT_EXPIRY; default 3600)", func(v string) error {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			o.jwtExpiry = time.Duration(n) * time.Second
		} else if o.jwtExpiry, err = time.ParseDuration(v); err != nil {
			return errors.New("want seconds or a duration such as 1h")
		}
		if o.jwtExpiry <= 0 {
			return errors.New("want a positive lifetime")
		}
		return nil
	})
	fs.StringVar(&o.adminToken, "admin-token", "", "admin token of the bridge; empty: random, kept in the data directory (env RTBUS_ADMIN_TOKEN)")
	fs.StringVar(&o.origins, "origin", "*", "CORS origins allowed by the bridge, comma-separated (env RTBUS_ORIGIN)")
	fs.StringVar(&o.ntp, "ntp", "pool", "NTP servers disciplining the bridge's clock (event times, tokens), comma-separated host[:port]; pool: the public pool ("+strings.Join(poolNTP, ",")+"), queried in the background so that start is not delayed; off: the local clock (env RTBUS_NTP)")
	fs.Int64Var(&o.maxBody, "max-body", httpbridge.DefaultMaxBody, "largest HTTP request body, bytes (env RTBUS_MAX_BODY)")
	fs.DurationVar(&o.serve.BodyTimeout, "http-body-timeout", httpserve.DefaultBodyTimeout, "time to receive a whole HTTP request, headers and body; later: 408, connection closed; streams exempt (env RTBUS_HTTP_BODY_TIMEOUT)")
	fs.DurationVar(&o.serve.WriteTimeout, "http-write-timeout", httpserve.DefaultWriteTimeout, "time to handle an HTTP request and write its response, from its headers; streams exempt (env RTBUS_HTTP_WRITE_TIMEOUT)")
	fs.DurationVar(&o.serve.IdleTimeout, "http-idle-timeout", httpserve.DefaultIdleTimeout, "idle HTTP keep-alive connections are closed after this (env RTBUS_HTTP_IDLE_TIMEOUT)")
	fs.IntVar(&o.serve.MaxConns, "http-max-conns", httpserve.DefaultMaxConns, "HTTP connections served at once per listener, streams included; more are answered 503 and closed; 0: no cap (env RTBUS_HTTP_MAX_CONNS)")
	if err := gatewayFlags(fs, &o.gw); err != nil {
		return nil, err
	}
	if err := clusterFlags(fs, &o.cluster); err != nil {
		return nil, err
	}
	fs.IntVar(&o.loginUser, "login-failures-user", httpbridge.DefaultLoginFailuresPerUser, "failed password checks (login, Basic) a username may make in a row, then one per window/N; beyond: 429; 0: no limit (env RTBUS_LOGIN_FAILURES_USER)")
	fs.IntVar(&o.loginAddr, "login-failures-addr", httpbridge.DefaultLoginFailuresPerAddr, "failed password checks a client address (IPv6: a /64) may make in a row, then one per window/N; beyond: 429; behind a proxy all clients share one; 0: no limit (env RTBUS_LOGIN_FAILURES_ADDR)")
	fs.DurationVar(&o.loginWindow, "login-failure-window", httpbridge.DefaultLoginFailureWindow, "how long failed password checks are remembered (env RTBUS_LOGIN_FAILURE_WINDOW)")
	fs.DurationVar(&o.basicTTL, "basic-cache-ttl", httpbridge.DefaultBasicCacheTTL, "how long Basic credentials that passed are remembered (hashed), sparing a bcrypt per request; 0: every request is checked (env RTBUS_BASIC_CACHE_TTL)")
	for flagName, env := range map[string]string{
		"login-failures-user": "RTBUS_LOGIN_FAILURES_USER", "login-failures-addr": "RTBUS_LOGIN_FAILURES_ADDR",
		"login-failure-window": "RTBUS_LOGIN_FAILURE_WINDOW", "basic-cache-ttl": "RTBUS_BASIC_CACHE_TTL",
		"http-body-timeout": "RTBUS_HTTP_BODY_TIMEOUT", "http-write-timeout": "RTBUS_HTTP_WRITE_TIMEOUT",
		"http-idle-timeout": "RTBUS_HTTP_IDLE_TIMEOUT", "http-max-conns": "RTBUS_HTTP_MAX_CONNS",
		"http": "RTBUS_HTTP", "data-dir": "RTBUS_DATA_DIR", "jwt-secret": "RTBUS_JWT_SECRET",
		"jwt-expiry": "RTBUS_JWT_EXPIRY", "admin-token": "RTBUS_ADMIN_TOKEN", "origin": "RTBUS_ORIGIN",
		"ntp": "RTBUS_NTP", "max-body": "RTBUS_MAX_BODY", "jwt-alg": "RTBUS_JWT_ALG", "jwt-key": "RTBUS_JWT_KEY",
	} {
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(flagName, v); err != nil {
				return nil, fmt.Errorf("environment %s=%q: %v", env, v, err)
			}
		}
	}
	return o, nil
}

// defaultDataDir is $XDG_DATA_HOME/rtbus, else ~/.local/share/rtbus, else a directory in /tmp.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "rtbus")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "rtbus")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("rtbus-%d", os.Getuid()))
}

// offIfZero turns a flag's 0 (off) into the Config's "none" (-1); Config's 0 is its default.
func offIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// poolNTP are the public NTP pool's servers: -ntp pool, the default.
var poolNTP = []string{"0.pool.ntp.org", "1.pool.ntp.org", "2.pool.ntp.org", "3.pool.ntp.org"}

// ntpServers reads -ntp: off (or empty) is none, and pool stands for poolNTP.
func ntpServers(v string) []string {
	var out []string
	for _, s := range splitList(v) {
		switch s {
		case "off":
			return nil
		case "pool":
			out = append(out, poolNTP...)
		default:
			out = append(out, s)
		}
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// startHTTP starts the bridge next to the bus, unless -http off. TLS uses -tls-cert and
// -tls-key where the daemon defines them (the certificate of every TLS listener). The returned
// function ends the streams, the listener and the store. In cluster mode the bridge starts
// once JetStream is ready; if it then fails, the error comes on failed (nil in single mode).
func startHTTP(o *httpOptions, fs *flag.FlagSet, b *bus.Broker, log *slog.Logger) (stop func(), failed <-chan error, err error) {
	o.cluster.given(fs)
	if err := o.cluster.check(o.addr == "off" || o.addr == ""); err != nil {
		return nil, nil, err
	}
	if o.addr == "off" || o.addr == "" {
		return func() {}, nil, nil
	}
	cfg := httpbridge.Config{
		DataDir: o.dataDir, JWTSecret: o.jwtSecret, JWTExpiry: o.jwtExpiry, AdminToken: o.adminToken,
		Origins: splitList(o.origins), MaxBody: o.maxBody, NTPServers: ntpServers(o.ntp), Logger: log,
		JWTAlgorithm:         o.jwtAlg,
		LoginFailuresPerUser: offIfZero(o.loginUser), LoginFailuresPerAddr: offIfZero(o.loginAddr),
		LoginFailureWindow: o.loginWindow, BasicCacheTTL: o.basicTTL,
	}
	if o.basicTTL == 0 {
		cfg.BasicCacheTTL = -1
	}
	if o.loginUser < 0 || o.loginAddr < 0 || o.loginWindow <= 0 || o.basicTTL < 0 {
		return nil, nil, errors.New("bad -login-failures-user, -login-failures-addr, -login-failure-window or -basic-cache-ttl: want counts and durations, 0 for none (a positive window)")
	}
	o.gw.configure(&cfg)
	if o.jwtKey != "" {
		if cfg.JWTKeyPEM, err = os.ReadFile(o.jwtKey); err != nil {
			return nil, nil, fmt.Errorf("-jwt-key: %w", err)
		}
	}
	if o.maxBody <= 0 {
		return nil, nil, fmt.Errorf("bad -max-body %d: want a positive size", o.maxBody)
	}
	for name, d := range map[string]time.Duration{"http-body-timeout": o.serve.BodyTimeout, "http-write-timeout": o.serve.WriteTimeout, "http-idle-timeout": o.serve.IdleTimeout} {
		if d <= 0 {
			return nil, nil, fmt.Errorf("bad -%s %v: want a positive duration", name, d)
		}
	}
	if o.serve.MaxConns < 0 {
		return nil, nil, fmt.Errorf("bad -http-max-conns %d: want a count, 0 for no cap", o.serve.MaxConns)
	}
	var cert, key string
	if f := fs.Lookup("tls-cert"); f != nil {
		cert = f.Value.String()
	}
	if f := fs.Lookup("tls-key"); f != nil {
		key = f.Value.String()
	}
	if (cert == "") != (key == "") {
		return nil, nil, errors.New("TLS for the HTTP bridge needs both -tls-cert and -tls-key")
	}
	var tlsCfg *tls.Config
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, nil, fmt.Errorf("http bridge TLS: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	}
	if o.cluster.enabled() {
		return startClusterBridge(o, cfg, tlsCfg, scheme(cert), b, log)
	}
	bridge, err := httpbridge.New(b, cfg)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		bridge.Close()
		return nil, nil, fmt.Errorf("http bridge: %w", err)
	}
	so := o.serve
	if so.MaxConns == 0 {
		so.MaxConns = -1 // the flag's 0 is no cap
	}
	so.TLS, so.Name, so.Logger = tlsCfg, "http", log
	hs := httpserve.New(bridge.Handler(), so)
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http bridge stopped", "err", err)
		}
	}()
	log.Info("http bridge listening", "address", scheme(cert)+"://"+ln.Addr().String(), "data_dir", o.dataDir, "max_conns", o.serve.MaxConns)
	so.TLS, so.Name = nil, "internal"
	stopInternal, err := startInternal(&o.gw, so, bridge.InternalHandler(), log)
	if err != nil {
		bridge.Close()
		hs.Close()
		return nil, nil, err
	}
	return func() {
		defer stopInternal()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The bridge first: it ends the streams that would keep the HTTP server waiting.
		if err := bridge.Shutdown(ctx); err != nil {
			log.Warn("http bridge shutdown", "err", err)
		}
		hs.Shutdown(ctx)
	}, nil, nil
}

// scheme is the bridge's URL scheme: https with a certificate.
func scheme(cert string) string {
	if cert != "" {
		return "https"
	}
	return "http"
}
