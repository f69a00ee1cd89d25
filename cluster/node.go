package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Prefix starts every subject, stream and bucket name rtbus uses, so that rtbus can share a
// NATS account with other applications.
const Prefix = "rtbus"

// ErrNotReady: JetStream has no leader yet (startup, or no quorum).
var ErrNotReady = errors.New("cluster: JetStream not ready")

// errNoQuorum: the routes reach fewer nodes than a majority of the cluster.
var errNoQuorum = errors.New("no quorum")

// Options configure Start. Either Listen (embedded server) or URLs (external NATS) is set.
type Options struct {
	// Name is the cluster's name (--cluster); every node of one cluster gives the same.
	Name string
	// NodeName names this node (server name); default: the host name and the listen port.
	NodeName string
	// Listen is the embedded server's route address (--cluster-listen HOST:PORT).
	Listen string
	// Peers are the other nodes' route addresses (--cluster-peers).
	Peers []string
	// ClientListen is the embedded server's client address; default 127.0.0.1:0 (random),
	// since only this process and rtbus tools connect to it.
	ClientListen string
	// URLs of an external NATS cluster (--nats-url); no embedded server is started.
	URLs []string
	// Credentials for URLs: a .creds file, or a user and password, or a token.
	CredsFile, User, Password, Token string
	// DataDir holds the embedded server's JetStream data (DataDir/jetstream).
	DataDir string
	// Replicas of the streams and buckets rtbus creates; 0 = 3, or 1 when there are no peers.
	Replicas int
	// SyncInterval is how often the embedded server flushes its stream files to disk: 0 =
	// after every write (an acknowledged event survives even a majority of hosts losing power
	// at once, as a single node's fsync'd insert does); more = NATS's way (2 minutes by
	// default there), faster, where a process crash loses nothing but a power loss of a
	// majority may lose the last writes.
	SyncInterval time.Duration
	// ElectionTimeout: an embedded server's raft follower that hears nothing from its leader
	// for a random time between this and twice this calls an election; 0 =
	// DefaultElectionTimeout, at least MinElectionTimeout. Longer where nodes may stall for
	// seconds (an overloaded host, a slow link), at the price of a slower failover. The
	// timers are the process's: every embedded server in one process runs with the same.
	// An external cluster's timers are its own.
	ElectionTimeout time.Duration
	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

// Node is this process's place in the cluster. Its methods are safe for concurrent use.
type Node struct {
	opts    Options
	srv     *server.Server // nil with an external cluster
	srvDown sync.Once      // shutdownServer
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger

	ready     atomic.Pointer[error]         // the watcher's latest answer; nil: ready
	last      atomic.Pointer[Status]        // the watcher's latest Status
	indexLag  atomic.Pointer[func() uint64] // SetIndexLag
	stopWatch context.CancelFunc
	watchDone chan struct{}

	elections sync.Map // stream name: election (watchElections)
	logMu     sync.Mutex
	logged    map[string]string // stream name: the leader the log named last
}

// Start starts the embedded server (or connects to the external cluster) and connects the
// in-process client. It does not wait for JetStream to have a leader: WaitReady does.
func Start(opts Options) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	n := &Node{opts: opts, log: opts.Logger}
	var (
		url  string
		copt []nats.Option
	)
	switch {
	case len(opts.URLs) > 0 && opts.Listen != "":
		return nil, errors.New("cluster: give either a cluster listen address or NATS URLs, not both")
	case len(opts.URLs) > 0:
		url = strings.Join(opts.URLs, ",")
		switch {
		case opts.CredsFile != "":
			copt = append(copt, nats.UserCredentials(opts.CredsFile))
		case opts.User != "":
			copt = append(copt, nats.UserInfo(opts.User, opts.Password))
		case opts.Token != "":
			copt = append(copt, nats.Token(opts.Token))
		}
	case opts.Listen != "":
		if err := n.startServer(); err != nil {
			return nil, err
		}
		url = n.srv.ClientURL()
		copt = append(copt, nats.InProcessServer(n.srv))
	default:
		return nil, errors.New("cluster: no cluster listen address and no NATS URL")
	}
	copt = append(copt,
		nats.Name("rtbusd "+n.NodeName()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				n.log.Warn("cluster: NATS connection lost", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { n.log.Info("cluster: NATS connection back", "url", c.ConnectedUrlRedacted()) }),
	)
	nc, err := nats.Connect(url, copt...)
	if err != nil {
		n.shutdownServer()
		return nil, fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	n.nc = nc
	if n.js, err = jetstream.New(nc); err != nil {
		n.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	notYet := fmt.Errorf("%w: not checked yet", ErrNotReady)
	n.ready.Store(&notYet)
	n.watchElections()
	ctx, cancel := context.WithCancel(context.Background())
	n.stopWatch, n.watchDone = cancel, make(chan struct{})
	go n.watch(ctx)
	return n, nil
}

func (n *Node) startServer() error {
	o := n.opts
	host, port, err := splitHostPort(o.Listen)
	if err != nil {
		return fmt.Errorf("cluster: listen address %q: %w", o.Listen, err)
	}
	chost, cport := "127.0.0.1", -1 // RANDOM_PORT
	if o.ClientListen != "" {
		if chost, cport, err = splitHostPort(o.ClientListen); err != nil {
			return fmt.Errorf("cluster: client address %q: %w", o.ClientListen, err)
		}
	}
	if o.DataDir == "" {
		return errors.New("cluster: no data directory for JetStream")
	}
	if len(o.Peers) > 0 {
		// The server would only log that it cannot listen and then wait; say so at once.
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return fmt.Errorf("cluster: route address: %w", err)
		}
		ln.Close()
	}
	sopts := &server.Options{
		ServerName: n.NodeName(),
		Host:       chost,
		Port:       cport,
		JetStream:  true,
		StoreDir:   filepath.Join(o.DataDir, "jetstream"),
		Cluster: server.ClusterOpts{
			Name: o.Name,
			Host: host,
			Port: port,
		},
		NoSigs:       true,
		SyncAlways:   o.SyncInterval <= 0,
		SyncInterval: o.SyncInterval,
		// A peer that is down is tried every second; say so once a minute, not each time
		// (the watcher logs routes going down and up).
		ConnectErrorReports:   60,
		ReconnectErrorReports: 60,
	}
	if sopts.Cluster.Name == "" {
		sopts.Cluster.Name = Prefix
	}
	if len(o.Peers) == 0 {
		// A cluster of one: JetStream runs standalone (a clustered JetStream needs routes),
		// and no route port is opened.
		sopts.Cluster = server.ClusterOpts{}
	}
	for _, p := range o.Peers {
		u, err := url.Parse("nats-route://" + p)
		if err != nil {
			return fmt.Errorf("cluster: peer %q: %w", p, err)
		}
		sopts.Routes = append(sopts.Routes, u)
	}
	if err := os.MkdirAll(sopts.StoreDir, 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := useElectionTimeout(o.ElectionTimeout); err != nil {
		return err
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		releaseElectionTimeout()
		return fmt.Errorf("cluster: %w", err)
	}
	srv.SetLoggerV2(natsLogger{n.log}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		releaseElectionTimeout()
		return fmt.Errorf("cluster: embedded NATS server did not start (is %s free?)", o.Listen)
	}
	n.srv = srv
	return nil
}

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, port, nil
}

// NodeName is this node's name (the embedded server's name, or the one given).
func (n *Node) NodeName() string {
	if n.opts.NodeName != "" {
		return n.opts.NodeName
	}
	h, _ := os.Hostname()
	if _, p, err := net.SplitHostPort(n.opts.Listen); err == nil {
		return h + "-" + p
	}
	return h
}

// Conn is the node's NATS connection (plain subjects).
func (n *Node) Conn() *nats.Conn { return n.nc }

// JetStream is the node's JetStream context (streams, buckets).
func (n *Node) JetStream() jetstream.JetStream { return n.js }

// Replicas is the replica count for the streams and buckets rtbus creates.
func (n *Node) Replicas() int {
	switch {
	case n.opts.Replicas > 0:
		return n.opts.Replicas
	case n.srv != nil && len(n.opts.Peers) == 0:
		return 1
	}
	return 3
}

// Ready returns nil when, with the embedded server, this node's routes reach a majority of
// the cluster's nodes, and JetStream answers (it has a meta leader); ErrNotReady otherwise.
// The routes are asked first: that is local, and it sees a lost quorum as soon as the routes
// drop, where the meta leader itself takes many seconds to step down.
func (n *Node) Ready(ctx context.Context) error {
	if n.srv != nil {
		if jsz, err := n.srv.Jsz(&server.JSzOptions{}); err == nil && jsz.Meta != nil {
			size, reach := jsz.Meta.Size, len(n.routes())+1
			if size > 1 && reach < size/2+1 {
				return fmt.Errorf("%w: %w: this node reaches %d of the cluster's %d nodes", ErrNotReady, errNoQuorum, reach, size)
			}
		}
	}
	if _, err := n.js.AccountInfo(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: JetStream did not answer (no meta leader)", ErrNotReady)
		}
		return fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	return nil
}

// WaitReady retries Ready until it succeeds or ctx ends, logging while it waits.
func (n *Node) WaitReady(ctx context.Context) error {
	logged := time.Time{}
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := n.Ready(c)
		cancel()
		if err == nil {
			return nil
		}
		if time.Since(logged) > 5*time.Second {
			n.log.Info("cluster: waiting for JetStream to elect a leader", "error", err)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNotReady, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Close closes the client and shuts the embedded server down.
func (n *Node) Close() {
	if n.stopWatch != nil {
		n.stopWatch()
		<-n.watchDone
	}
	if n.nc != nil {
		n.nc.Close()
	}
	n.shutdownServer()
}

func (n *Node) shutdownServer() {
	if n.srv != nil {
		n.srvDown.Do(func() {
			n.srv.Shutdown()
			n.srv.WaitForShutdown()
			releaseElectionTimeout()
		})
	}
}

// natsLogger sends the embedded server's log to slog: notices at Debug (they are many),
// warnings and errors as such.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Warnf(format string, v ...any) { l.log.Warn("nats: " + fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Errorf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Debugf(format string, v ...any) {}
func (l natsLogger) Tracef(format string, v ...any) {}
