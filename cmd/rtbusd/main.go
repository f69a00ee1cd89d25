// Command rtbusd runs the rtbus broker.
//
// For now it hosts the in-process bus only; the socket transports and the HTTP bridge attach
// to it in later releases. It runs until SIGINT or SIGTERM, then shuts the bus down cleanly:
// clients get the shutdown warning on .broker/warn before they are disconnected.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rtbusd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("rtbusd", flag.ContinueOnError)
	queue := fs.Int("queue-size", bus.DefaultQueueSize, "frames queued per client before it is dropped as a slow receiver (env RTBUS_QUEUE_SIZE)")
	policy := fs.String("aaa", "", "access policy file (JSON); empty allows every client (env RTBUS_AAA)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error (env RTBUS_LOG_LEVEL)")
	// Environment variables set defaults; flags override them.
	for flagName, env := range map[string]string{"queue-size": "RTBUS_QUEUE_SIZE", "aaa": "RTBUS_AAA", "log-level": "RTBUS_LOG_LEVEL"} {
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(flagName, v); err != nil {
				return fmt.Errorf("environment %s=%q: %v", env, v, err)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("bad -log-level %q", *level)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))

	opts := []bus.Option{bus.WithQueueSize(*queue), bus.WithLogger(log)}
	if *policy != "" {
		m, err := aaa.LoadFile(*policy)
		if err != nil {
			return err
		}
		opts = append(opts, bus.WithPolicy(m))
		log.Info("access policy loaded", "file", *policy, "clients", len(m.Names()))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := bus.New(opts...)
	log.Info("rtbusd started", "pid", os.Getpid(), "queue_size", *queue)
	<-ctx.Done()
	log.Info("rtbusd shutting down")
	return b.Close()
}
