// Command interthread runs three in-process workers on one bus: worker.1 sends "hello" to
// worker.3 one-to-one, worker.2 broadcasts to "worker.*", and worker.3 prints what arrives.
// It runs until interrupted (or for -count rounds).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/vmihailenco/msgpack/v5"
)

func main() {
	interval := flag.Duration("interval", time.Second, "time between rounds")
	count := flag.Int("count", 0, "rounds to run; 0 runs until interrupted")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *interval, *count); err != nil {
		log.Fatal(err)
	}
}

// run runs count rounds (0: until ctx ends) and writes what worker.3 receives to w.
func run(ctx context.Context, w io.Writer, interval time.Duration, count int) error {
	b := bus.New()
	defer b.Close()
	var clients [3]*bus.Client
	for i := range clients {
		c, err := b.RegisterClient(fmt.Sprintf("worker.%d", i+1))
		if err != nil {
			return err
		}
		clients[i] = c
	}
	sender, broadcaster, printer := clients[0], clients[1], clients[2]

	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for f := range printer.Frames() {
			if f.Kind == bus.KindPublish {
				// The broker's own publications, such as the shutdown warning on
				// .broker/warn, are MessagePack maps.
				var m map[string]any
				if msgpack.Unmarshal(f.Payload, &m) == nil {
					fmt.Fprintf(w, "worker.3 got publish on %s from %s: %v\n", f.Topic, f.Sender, m)
					continue
				}
			}
			fmt.Fprintf(w, "worker.3 got %s from %s: %s\n", f.Kind, f.Sender, f.Payload)
		}
	}()
	// The broadcast reaches worker.1 and worker.2 as well: they must read their queues too,
	// or the broker would in time drop them as slow receivers.
	for _, c := range []*bus.Client{sender, broadcaster} {
		go func() {
			defer wg.Done()
			for range c.Frames() {
			}
		}()
	}

	tick := time.NewTicker(interval)
	defer tick.Stop()
	var err error
loop:
	for round := 1; count == 0 || round <= count; round++ {
		if err = sender.Send(bus.QoSProcessed, "worker.3", []byte("hello")); err != nil {
			break
		}
		msg := fmt.Sprintf("round %d", round)
		if err = broadcaster.Broadcast(bus.QoSProcessed, "worker.*", []byte(msg)); err != nil {
			break
		}
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
	}
	b.Close() // the readers drain what is queued, then their loops end
	wg.Wait()
	return err
}
