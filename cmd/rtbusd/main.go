// Command rtbusd runs the rtbus broker and serves it to BUS/RT clients over UNIX sockets, TCP
// and WebSocket (-B, repeatable; by default one UNIX socket, printed at start). SIGHUP reads
// the access policy files again and disconnects the clients whose rules changed. It runs until SIGINT or
// SIGTERM, then shuts down cleanly: clients get the shutdown warning on .broker/warn, are
// given a moment to read it, and the listeners close, removing their socket files.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
	"github.com/rtbus/rtbus/transport"
)

func main() {
	err := run(os.Args[1:])
	var bad badFlags
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &bad):
		os.Exit(2) // the flag set printed the error and the usage
	default:
		fmt.Fprintln(os.Stderr, "rtbusd:", err)
		os.Exit(1)
	}
}

// badFlags is a command line the flag set refused, as with any Go command: exit code 2.
type badFlags struct{ error }

func run(args []string) error {
	fs := flag.NewFlagSet("rtbusd", flag.ContinueOnError)
	queue := fs.Int("queue-size", bus.DefaultQueueSize, "frames queued per client before it is dropped as a slow receiver (env RTBUS_QUEUE_SIZE)")
	policy := fs.String("aaa", "", "access policy file (JSON) of every listener without its own aaa= (see -B); empty allows every client; SIGHUP reads it again (env RTBUS_AAA)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error (env RTBUS_LOG_LEVEL)")
	var binds []listenSpec
	fs.Func("B", bindHelp+defaultSocket()+")", func(v string) error {
		l, err := parseBind(v, false)
		binds = append(binds, l...)
		return err
	})
	timeout := fs.Duration("timeout", 5*time.Second, "handshake and write timeout; clients silent for 1.25× it are dropped (env RTBUS_TIMEOUT)")
	bufSize := fs.Int("buf-size", transport.DefaultWriteBuffer, "write buffer per connection, bytes (env RTBUS_BUF_SIZE)")
	flushDelay := fs.Duration("flush-delay", transport.DefaultFlushDelay, "how long non-realtime frames may wait to share a write (env RTBUS_FLUSH_DELAY)")
	payloadLimit := fs.Int("payload-limit", transport.DefaultPayloadLimit, "largest frame body accepted, bytes (env RTBUS_PAYLOAD_LIMIT)")
	incompleteLimit := fs.Int("incomplete-limit", transport.DefaultIncompleteLimit, "bytes all bus connections together may hold for frames over 64 KiB still arriving; a connection that would pass it waits up to -timeout, then is closed (at least -payload-limit; env RTBUS_INCOMPLETE_LIMIT)")
	socketMode := fs.String("socket-mode", "0660", "file mode of UNIX sockets (env RTBUS_SOCKET_MODE)")
	pidFile := fs.String("pid-file", "", "write the process id to this file (env RTBUS_PID_FILE)")
	tlsCert := fs.String("tls-cert", "", "certificate for every TLS listener, PEM; with -tls-key (env RTBUS_TLS_CERT)")
	tlsKey := fs.String("tls-key", "", "private key of -tls-cert, PEM (env RTBUS_TLS_KEY)")
	httpOpts, err := httpFlags(fs) // the HTTP bridge's flags: http.go
	if err != nil {
		return err
	}
	// Environment variables set defaults; flags override them.
	for flagName, env := range map[string]string{
		"queue-size": "RTBUS_QUEUE_SIZE", "aaa": "RTBUS_AAA", "log-level": "RTBUS_LOG_LEVEL",
		"timeout": "RTBUS_TIMEOUT", "buf-size": "RTBUS_BUF_SIZE", "flush-delay": "RTBUS_FLUSH_DELAY",
		"payload-limit": "RTBUS_PAYLOAD_LIMIT", "incomplete-limit": "RTBUS_INCOMPLETE_LIMIT", "socket-mode": "RTBUS_SOCKET_MODE", "pid-file": "RTBUS_PID_FILE",
		"tls-cert": "RTBUS_TLS_CERT", "tls-key": "RTBUS_TLS_KEY",
	} {
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(flagName, v); err != nil {
				return fmt.Errorf("environment %s=%q: %v", env, v, err)
			}
		}
	}
	if v := os.Getenv("RTBUS_BIND"); v != "" {
		if binds, err = parseBind(v, true); err != nil {
			return fmt.Errorf("environment RTBUS_BIND=%q: %v", v, err)
		}
	}
	// A broker user's command line: its flags and SAVE_PATH (brokerflags.go).
	args, notices, err := brokerArgs(args, fs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtbusd:", err)
		return badFlags{err}
	}
	if n, err := brokerEnv(fs, args); err != nil {
		return fmt.Errorf("environment SAVE_PATH: %v", err)
	} else if n != "" {
		notices = append(notices, n)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return badFlags{err}
	}
	if len(binds) == 0 {
		binds = []listenSpec{{addr: defaultSocket()}}
	}
	mode, err := strconv.ParseUint(*socketMode, 8, 32)
	if err != nil {
		return fmt.Errorf("bad -socket-mode %q: want an octal file mode", *socketMode)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("bad -log-level %q", *level)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	for _, n := range notices {
		log.Warn(n)
	}
	// Zero would mean transport's default, which is not what a user who wrote 0 asked for.
	if *incompleteLimit <= 0 {
		return fmt.Errorf("bad -incomplete-limit %d: want a positive size", *incompleteLimit)
	}
	if *payloadLimit > 0 && *incompleteLimit < *payloadLimit {
		log.Warn("-incomplete-limit raised to -payload-limit: one largest frame must be able to arrive",
			"incomplete_limit", *incompleteLimit, "payload_limit", *payloadLimit)
	}

	cfg := transport.Config{
		WriteBuffer:     *bufSize,
		FlushDelay:      *flushDelay,
		Timeout:         *timeout,
		PayloadLimit:    *payloadLimit,
		IncompleteLimit: *incompleteLimit,
		Logger:          log,
		UnixMode:        os.FileMode(mode),
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// The policies guard the sockets; the daemon has no in-process clients of its own.
	pols := newPolicies(log)
	for i := range binds {
		if binds[i].aaa == "" {
			binds[i].aaa = *policy
		}
		if binds[i].aaa != "" {
			if _, err := pols.get(binds[i].aaa); err != nil {
				return err
			}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// SIGHUP is caught from here on, before the pid file exists: a supervisor that reloads as
	// soon as it reads the pid must not hit the default action, which ends the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	defer stop()
	b := bus.New(bus.WithQueueSize(*queue), bus.WithLogger(log))
	if _, err := rpc.ServeBroker(b); err != nil { // .broker answers the core methods (WIRE.md §9)
		b.Close()
		return err
	}
	srv := transport.NewServer(b)
	for _, l := range binds {
		lc := cfg
		if l.mode != 0 {
			lc.UnixMode = l.mode
		}
		if l.aaa != "" {
			lc.Policy, _ = pols.get(l.aaa) // read above
		}
		ln, err := srv.Listen(l.addr, lc)
		if err != nil {
			if errors.Is(err, transport.ErrNoTLSConfig) {
				err = errors.New("a TLS address needs -tls-cert and -tls-key")
			}
			srv.Close()
			b.Close()
			return fmt.Errorf("listen %s: %w", l.addr, err)
		}
		if l.aaa != "" {
			pols.attach(l.aaa, ln.Addr().String())
			log.Info("listening", "address", boundAddr(l.addr, ln), "aaa", l.aaa)
		} else {
			log.Info("listening", "address", boundAddr(l.addr, ln))
		}
	}
	stopHTTP, httpFailed, err := startHTTP(httpOpts, fs, b, log)
	if err != nil {
		srv.Close()
		b.Close()
		return err
	}
	defer stopHTTP()
	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return err
		}
		defer os.Remove(*pidFile)
	}
	log.Info("rtbusd started", "pid", os.Getpid(), "queue_size", *queue)
	var failed error
	for ctx.Err() == nil && failed == nil {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading the access policies")
			pols.reload(b)
		case failed = <-httpFailed: // cluster mode: the bridge could not start
		case <-ctx.Done():
		}
	}
	log.Info("rtbusd shutting down")
	b.Close() // the shutdown warning, then every client is disconnected
	grace, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(grace) // writers flush the warning, listeners remove their socket files
	return failed
}

// defaultSocket is a per-user runtime directory's socket where there is one, else /tmp's.
func defaultSocket() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "rtbus.sock")
	}
	return filepath.Join(os.TempDir(), "rtbus.sock")
}

// boundAddr is addr as given to -B, with port 0 replaced by the port the system chose, so
// that whoever asked for any free port (tests, scripts) reads it in the log.
func boundAddr(addr string, ln net.Listener) string {
	host, ok := strings.CutSuffix(addr, ":0")
	if !ok {
		return addr
	}
	if _, port, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		return host + ":" + port
	}
	return addr
}
