// Command natsrpc measures NATS request-reply: -w requesters, each on its own connection,
// calling sequentially through a running nats-server to -w responders in one queue group
// (each on its own connection) that echo the payload. It is the NATS side of
// bench/natsrpc.sh, which runs `rtbus benchmark` against rtbusd in the same run.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	url := flag.String("nats", "nats://127.0.0.1:4222", "nats-server URL")
	workers := flag.Int("w", 8, "requesters (and responders)")
	n := flag.Int("n", 200_000, "requests per run, shared by the requesters")
	size := flag.Int("size", 100, "payload bytes")
	runs := flag.Int("runs", 3, "runs; the best is reported")
	flag.Parse()

	payload := bytes.Repeat([]byte{0x5a}, *size)
	var conns []*nats.Conn
	connect := func() *nats.Conn {
		nc, err := nats.Connect(*url)
		if err != nil {
			log.Fatal(err)
		}
		conns = append(conns, nc)
		return nc
	}
	for range *workers {
		nc := connect()
		if _, err := nc.QueueSubscribe("bench.echo", "echo", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
			log.Fatal(err)
		}
		nc.Flush()
	}
	requesters := make([]*nats.Conn, *workers)
	for i := range requesters {
		requesters[i] = connect()
	}
	best := 0.0
	for range *runs {
		start := time.Now()
		var wg sync.WaitGroup
		for i, nc := range requesters {
			count := *n / *workers
			if i < *n%*workers {
				count++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range count {
					m, err := nc.Request("bench.echo", payload, 5*time.Second)
					if err != nil {
						log.Fatal(err)
					}
					if len(m.Data) != len(payload) {
						log.Fatalf("echo of %d bytes, sent %d", len(m.Data), len(payload))
					}
				}
			}()
		}
		wg.Wait()
		best = max(best, float64(*n)/time.Since(start).Seconds())
	}
	fmt.Printf("NATS request-reply, %d requesters -> %d queue responders: %.0f requests/s (best of %d)\n", *workers, *workers, best, *runs)
	for _, nc := range conns {
		nc.Close()
	}
}
