package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rtbus/rtbus/httpbridge"
	"github.com/rtbus/rtbus/internal/httpserve"
)

// gatewayOptions are the flags of the gateway's internal API and its public streams
// (GATEWAY.md "Internal API", "Anonymous read-only streams").
type gatewayOptions struct {
	internal      string
	publicTenants string
	defaultTenant string
	privileged    string
	keepAlive     time.Duration
	serving       atomic.Bool // the internal listener serves (for /readyz)
}

func gatewayFlags(fs *flag.FlagSet, o *gatewayOptions) error {
	fs.StringVar(&o.internal, "internal", "127.0.0.1:8081", "address of the internal API for backends (admin token required; never expose it publicly); off disables it (env RTBUS_INTERNAL)")
	fs.StringVar(&o.publicTenants, "public-tenants", "", "tenants whose publications anyone may stream without credentials (GET /public/events/TENANT), comma-separated (env RTBUS_PUBLIC_TENANTS)")
	fs.StringVar(&o.defaultTenant, "default-tenant", "", "tenant of sign-ups that name none; GET /events without credentials streams it when it is public (env RTBUS_DEFAULT_TENANT)")
	fs.StringVar(&o.privileged, "privileged-roles", strings.Join(httpbridge.DefaultPrivilegedRoles, ","), "roles whose users may watch other users' messages on their streams (?users=), comma-separated; empty: nobody (env RTBUS_PRIVILEGED_ROLES)")
	fs.DurationVar(&o.keepAlive, "keepalive", 15*time.Second, "heartbeat period of idle streams: an SSE keepalive event, a WebSocket ping (unanswered for two periods: closed) (env RTBUS_KEEPALIVE)")
	for flagName, env := range map[string]string{
		"internal": "RTBUS_INTERNAL", "public-tenants": "RTBUS_PUBLIC_TENANTS", "default-tenant": "RTBUS_DEFAULT_TENANT",
		"privileged-roles": "RTBUS_PRIVILEGED_ROLES", "keepalive": "RTBUS_KEEPALIVE",
	} {
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(flagName, v); err != nil {
				return fmt.Errorf("environment %s=%q: %v", env, v, err)
			}
		}
	}
	return nil
}

func (o *gatewayOptions) off() bool { return o.internal == "off" || o.internal == "" }

// configure sets the bridge's configuration from the flags.
func (o *gatewayOptions) configure(cfg *httpbridge.Config) {
	cfg.PublicTenants = splitList(o.publicTenants)
	cfg.DefaultTenant = o.defaultTenant
	cfg.PrivilegedRoles = append([]string{}, splitList(o.privileged)...) // non-nil: empty means nobody
	cfg.KeepAlive = o.keepAlive
	cfg.Ready = func() error {
		if !o.off() && !o.serving.Load() {
			return errors.New("internal listener not serving")
		}
		return nil
	}
}

// startInternal serves the bridge's internal API on its own listener, unless -internal off.
// It has the public listener's deadlines and connection cap (so).
func startInternal(o *gatewayOptions, so httpserve.Options, h http.Handler, log *slog.Logger) (stop func(), err error) {
	if o.off() {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", o.internal)
	if err != nil {
		return nil, fmt.Errorf("internal API: %w", err)
	}
	hs := httpserve.New(h, so)
	o.serving.Store(true)
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("internal API stopped", "err", err)
		}
		o.serving.Store(false)
	}()
	log.Info("internal API listening", "address", "http://"+ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	}, nil
}
