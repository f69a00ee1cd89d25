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
	"sync/atomic"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/cluster"
	"github.com/rtbus/rtbus/httpbridge"
	"github.com/rtbus/rtbus/internal/httpserve"
)

// clusterOptions are the flags of cluster mode: an embedded NATS server routed to its peers
// (-cluster, -cluster-listen, -cluster-peers), or an external NATS cluster (-nats-url and its
// credentials). None given: single-node rtbusd, no NATS at all.
type clusterOptions struct {
	name, listen, peers, node      string
	replicas                       int
	sync, election                 time.Duration
	urls, creds, user, pass, token string
	set                            map[string]bool // the cluster flags given (command line or environment)
}

// clusterFlagEnv are the cluster flags and their environment variables.
var clusterFlagEnv = map[string]string{
	"cluster": "RTBUS_CLUSTER", "cluster-listen": "RTBUS_CLUSTER_LISTEN", "cluster-peers": "RTBUS_CLUSTER_PEERS",
	"cluster-node": "RTBUS_CLUSTER_NODE", "cluster-replicas": "RTBUS_CLUSTER_REPLICAS",
	"cluster-sync": "RTBUS_CLUSTER_SYNC", "cluster-election-timeout": "RTBUS_CLUSTER_ELECTION_TIMEOUT",
	"nats-url": "RTBUS_NATS_URL", "nats-creds": "RTBUS_NATS_CREDS", "nats-user": "RTBUS_NATS_USER",
	"nats-password": "RTBUS_NATS_PASSWORD", "nats-token": "RTBUS_NATS_TOKEN",
}

func clusterFlags(fs *flag.FlagSet, o *clusterOptions) error {
	fs.StringVar(&o.name, "cluster", "", "cluster mode with an embedded NATS server: the cluster's name, the same on every node; needs -cluster-listen (env RTBUS_CLUSTER)")
	fs.StringVar(&o.listen, "cluster-listen", "", "HOST:PORT the embedded NATS server takes routes from its peers on (env RTBUS_CLUSTER_LISTEN)")
	fs.StringVar(&o.peers, "cluster-peers", "", "the other nodes' -cluster-listen addresses, comma-separated host:port (env RTBUS_CLUSTER_PEERS)")
	fs.StringVar(&o.node, "cluster-node", "", "this node's name in the cluster, unique; default: the host name and the -cluster-listen port (env RTBUS_CLUSTER_NODE)")
	fs.IntVar(&o.replicas, "cluster-replicas", 0, "copies kept of the event log and the account buckets, 1 to 5; 0: 3, or 1 for an embedded node without peers (env RTBUS_CLUSTER_REPLICAS)")
	fs.DurationVar(&o.sync, "cluster-sync", 0, "how often the embedded NATS server flushes the event log and buckets to disk: 0 after every write (an acknowledged event survives a power loss, as on a single node); e.g. 2m is NATS's default, faster, where a power loss of most nodes at once may lose the last writes (env RTBUS_CLUSTER_SYNC)")
	fs.DurationVar(&o.election, "cluster-election-timeout", cluster.DefaultElectionTimeout, "a node that hears nothing from a raft leader of the embedded NATS servers for a random time between this and twice this calls an election: the wait after a leader's crash; at least 2s; longer where a host may stall for seconds (NATS's own default is 4s) (env RTBUS_CLUSTER_ELECTION_TIMEOUT)")
	fs.StringVar(&o.urls, "nats-url", "", "cluster mode on an external NATS cluster with JetStream: its URLs, comma-separated (nats://host:4222); no embedded server (env RTBUS_NATS_URL)")
	fs.StringVar(&o.creds, "nats-creds", "", "credentials file (.creds) for -nats-url (env RTBUS_NATS_CREDS)")
	fs.StringVar(&o.user, "nats-user", "", "user for -nats-url, with -nats-password (env RTBUS_NATS_USER)")
	fs.StringVar(&o.pass, "nats-password", "", "password of -nats-user; prefer the environment, which ps does not show (env RTBUS_NATS_PASSWORD)")
	fs.StringVar(&o.token, "nats-token", "", "token for -nats-url; prefer the environment (env RTBUS_NATS_TOKEN)")
	o.set = map[string]bool{}
	for flagName, env := range clusterFlagEnv {
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(flagName, v); err != nil {
				return fmt.Errorf("environment %s=%q: %v", env, v, err)
			}
			o.set[flagName] = v != ""
		}
	}
	return nil
}

// given records which cluster flags the command line set (after fs.Parse).
func (o *clusterOptions) given(fs *flag.FlagSet) {
	fs.Visit(func(f *flag.Flag) {
		if _, ok := clusterFlagEnv[f.Name]; ok {
			o.set[f.Name] = f.Value.String() != "" && f.Value.String() != "0"
		}
	})
}

// enabled: cluster mode, embedded or external.
func (o *clusterOptions) enabled() bool { return o.name != "" || o.listen != "" || o.urls != "" }

// check refuses the combinations that make no sense, naming the flags, before anything starts.
func (o *clusterOptions) check(httpOff bool) error {
	embedded, external := o.listen != "" || o.name != "", o.urls != ""
	for _, f := range []string{"cluster-peers", "cluster-node", "cluster-replicas", "cluster-sync", "cluster-election-timeout", "nats-creds", "nats-user", "nats-password", "nats-token"} {
		if o.set[f] && !embedded && !external {
			return fmt.Errorf("-%s is for cluster mode: give -cluster NAME and -cluster-listen HOST:PORT, or -nats-url", f)
		}
	}
	switch {
	case !embedded && !external:
		return nil
	case strings.ContainsAny(o.node, " \t\r\n"):
		return fmt.Errorf("bad -cluster-node %q: a name without spaces", o.node)
	case embedded && external:
		return errors.New("-nats-url uses an external NATS cluster; -cluster, -cluster-listen and -cluster-peers start an embedded one: give one or the other")
	case httpOff:
		return errors.New("cluster mode serves the HTTP bridge's tenants: it needs the bridge (-http is off)")
	case o.sync < 0:
		return fmt.Errorf("bad -cluster-sync %v: 0 (every write) or a positive duration", o.sync)
	case external && o.set["cluster-sync"]:
		return errors.New("-cluster-sync is for the embedded NATS server; an external cluster's operator sets sync_interval in its configuration")
	case external && o.set["cluster-election-timeout"]:
		return errors.New("-cluster-election-timeout is for the embedded NATS server; an external cluster's elections follow its own timers")
	case o.election < cluster.MinElectionTimeout:
		return fmt.Errorf("bad -cluster-election-timeout %v: at least %v (NATS leaders send a heartbeat every second)", o.election, cluster.MinElectionTimeout)
	case o.replicas < 0 || o.replicas > 5:
		return fmt.Errorf("bad -cluster-replicas %d: want 1 to 5 (0: the default)", o.replicas)
	}
	if external {
		n := 0
		for _, v := range []string{o.creds, o.user, o.token} {
			if v != "" {
				n++
			}
		}
		switch {
		case n > 1:
			return errors.New("give one kind of NATS credentials: -nats-creds, -nats-user with -nats-password, or -nats-token")
		case o.pass != "" && o.user == "":
			return errors.New("-nats-password goes with -nats-user")
		}
		for _, u := range splitList(o.urls) {
			if !strings.Contains(u, "://") {
				return fmt.Errorf("bad -nats-url %q: want URLs such as nats://host:4222", u)
			}
		}
		return nil
	}
	for _, f := range []string{"nats-creds", "nats-user", "nats-password", "nats-token"} {
		if o.set[f] {
			return fmt.Errorf("-%s is for -nats-url: the embedded NATS server needs no credentials", f)
		}
	}
	switch {
	case o.name == "":
		return errors.New("-cluster-listen needs -cluster NAME, the cluster's name (the same on every node)")
	case strings.ContainsAny(o.name, " \t\r\n.*>"):
		return fmt.Errorf("bad -cluster %q: a name without spaces, dots or wildcards", o.name)
	case o.listen == "":
		return errors.New("-cluster needs -cluster-listen HOST:PORT, the address peers route to")
	}
	if err := hostPort(o.listen); err != nil {
		return fmt.Errorf("bad -cluster-listen %q: %v", o.listen, err)
	}
	peers := splitList(o.peers)
	for _, p := range peers {
		if err := hostPort(p); err != nil {
			return fmt.Errorf("bad -cluster-peers address %q: %v", p, err)
		}
		if p == o.listen {
			return fmt.Errorf("-cluster-peers lists this node's own -cluster-listen %s", p)
		}
	}
	if o.replicas > len(peers)+1 {
		return fmt.Errorf("-cluster-replicas %d needs at least %d nodes; -cluster-peers names %d other", o.replicas, o.replicas, len(peers))
	}
	return nil
}

func hostPort(s string) error {
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
		return errors.New("want a port from 1 to 65535")
	}
	return nil
}

// start starts this node's NATS side: the embedded server (its JetStream data in
// dataDir/jetstream) or the connection to the external cluster. It returns at once; the
// node's watcher logs while JetStream has no leader.
func (o *clusterOptions) start(dataDir string, log *slog.Logger) (*cluster.Node, error) {
	opts := cluster.Options{
		Name: o.name, NodeName: o.node, Listen: o.listen, Peers: splitList(o.peers),
		URLs: splitList(o.urls), CredsFile: o.creds, User: o.user, Password: o.pass, Token: o.token,
		DataDir: dataDir, Replicas: o.replicas, SyncInterval: o.sync, ElectionTimeout: o.election, Logger: log,
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	n, err := cluster.Start(opts)
	if err != nil {
		return nil, err
	}
	switch {
	case o.listen != "" && len(opts.Peers) == 0:
		log.Info("cluster: embedded NATS server started, a cluster of one: JetStream standalone, no route port",
			"cluster", o.name, "node", n.NodeName(), "replicas", n.Replicas(), "jetstream_dir", filepath.Join(dataDir, "jetstream"))
	case o.listen != "":
		log.Info("cluster: embedded NATS server started", "cluster", o.name, "node", n.NodeName(), "listen", o.listen,
			"peers", o.peers, "replicas", n.Replicas(), "election_timeout", o.election, "jetstream_dir", filepath.Join(dataDir, "jetstream"))
	default:
		log.Info("cluster: connected to NATS", "node", n.NodeName(), "url", n.Conn().ConnectedUrlRedacted(), "replicas", n.Replicas())
	}
	return n, nil
}

// startClusterBridge serves the bridge's listeners at once but starts the bridge itself only
// once JetStream is ready (its event log and buckets live there): until then the public
// listener answers 503 to everything but /healthz, and the internal one 503 on /readyz. Later
// /readyz follows the node's readiness, checked every second, so a load balancer stops
// sending requests to a node that lost quorum.
func startClusterBridge(o *httpOptions, cfg httpbridge.Config, tlsCfg *tls.Config, scheme string, b *bus.Broker, log *slog.Logger) (stop func(), failed <-chan error, err error) {
	node, err := o.cluster.start(o.dataDir, log)
	if err != nil {
		return nil, nil, err
	}
	cfg.Cluster = node
	listeners := cfg.Ready
	cfg.Ready = func() error {
		if err := node.Readiness(); err != nil {
			return err
		}
		if listeners != nil {
			return listeners()
		}
		return nil
	}
	pub, internal := newSwapHandler(false), newSwapHandler(true)
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		node.Close()
		return nil, nil, fmt.Errorf("http bridge: %w", err)
	}
	so := o.serve
	if so.MaxConns == 0 {
		so.MaxConns = -1 // the flag's 0 is no cap
	}
	so.TLS, so.Name, so.Logger = tlsCfg, "http", log
	hs := httpserve.New(pub, so)
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http bridge stopped", "err", err)
		}
	}()
	log.Info("http bridge listening", "address", scheme+"://"+ln.Addr().String(), "data_dir", o.dataDir, "max_conns", o.serve.MaxConns)
	so.TLS, so.Name = nil, "internal"
	stopInternal, err := startInternal(&o.gw, so, internal, log)
	if err != nil {
		hs.Close()
		node.Close()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	fail := make(chan error, 1)
	done := make(chan struct{})
	var bridge *httpbridge.Server // set before done closes
	go func() {
		defer close(done)
		failures := 0
		for {
			if !waitReady(ctx, node) {
				return
			}
			br, err := httpbridge.New(b, cfg)
			if err == nil {
				bridge = br
				pub.set(br.Handler())
				internal.set(br.InternalHandler())
				log.Info("http bridge serving: the cluster is ready", "node", node.NodeName())
				return
			}
			if node.Readiness() != nil {
				log.Warn("http bridge: JetStream became unavailable while starting; waiting again", "err", err)
				continue
			}
			// JetStream answers, but a stream or bucket of ours may still be electing its
			// leader (a node restarted while a peer is down: seen in CI as a watch of the
			// accounts bucket timing out). Try a few times before calling it a real failure.
			if failures++; failures == startAttempts {
				fail <- fmt.Errorf("http bridge: %w", err)
				return
			}
			log.Warn("http bridge: starting failed; trying again", "err", err, "attempt", failures, "of", startAttempts)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(failures) * time.Second):
			}
		}
	}()
	return func() {
		cancel()
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if bridge != nil {
			// The bridge first: it ends the streams that would keep the HTTP server waiting.
			if err := bridge.Shutdown(ctx); err != nil {
				log.Warn("http bridge shutdown", "err", err)
			}
		}
		hs.Shutdown(ctx)
		stopInternal()
		node.Close()
	}, fail, nil
}

// startAttempts bounds the tries at starting the bridge while JetStream answers: a real
// failure (a single node's store given to cluster mode, a bad secret) ends rtbusd after
// them, about 10 s; a stream or bucket still electing its leader gets that time.
const startAttempts = 5

// waitReady waits until the node's periodic check finds JetStream ready (the node logs while
// it waits); false: ctx ended first.
func waitReady(ctx context.Context, node *cluster.Node) bool {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for node.Readiness() != nil {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// swapHandler serves "starting" answers until the bridge exists, then the bridge's handler.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func newSwapHandler(internal bool) *swapHandler {
	s := &swapHandler{}
	s.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/healthz" {
			w.Write([]byte(`{"status":"ok"}` + "\n"))
			return
		}
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"starting: waiting for the cluster's JetStream to elect a leader"}` + "\n"))
	}))
	return s
}

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}
