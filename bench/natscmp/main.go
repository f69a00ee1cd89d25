// Command natscmp measures one publisher → one subscriber, 128-byte messages, through a
// running rtbusd (UNIX socket and TCP) and a running nats-server, in the same run. Both
// publishers keep at most -window messages in flight, since neither protocol has flow
// control at QoS 0 and a subscriber that falls too far behind is dropped by either broker.
// The window is kept with credits, one per 256 messages, on which a publisher blocks rather
// than spins, so that the harness takes no CPU from the brokers and clients it measures.
// bench/nats.sh builds and starts both brokers on loopback and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/transport"
)

func main() {
	unixAddr := flag.String("unix", "/tmp/rtbus-bench.sock", "rtbusd UNIX socket")
	tcpAddr := flag.String("tcp", "127.0.0.1:7777", "rtbusd TCP address")
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "nats-server URL")
	n := flag.Int("n", 2_000_000, "messages per run")
	size := flag.Int("size", 128, "payload bytes")
	window := flag.Int64("window", 4096, "messages in flight at most")
	runs := flag.Int("runs", 3, "runs per broker; the best is reported")
	flag.Parse()

	payload := make([]byte, *size)
	brokers := []struct {
		name string
		run  func() (float64, error)
	}{
		{"rtbus UNIX socket", func() (float64, error) { return rtbus(*unixAddr, *n, payload, *window) }},
		{"rtbus TCP", func() (float64, error) { return rtbus(*tcpAddr, *n, payload, *window) }},
		{"NATS TCP", func() (float64, error) { return natsRun(*natsURL, *n, payload, *window) }},
	}
	// Rounds take every broker in turn, so that a change of load on a shared machine
	// touches all of them rather than the one that happened to run then.
	best := make([]float64, len(brokers))
	for range *runs {
		for i, b := range brokers {
			rate, err := b.run()
			if err != nil {
				log.Fatalf("%s: %v", b.name, err)
			}
			best[i] = max(best[i], rate)
		}
	}
	fmt.Printf("%-22s %14s %10s\n", "broker", "msgs/s (best)", "× NATS")
	for i, b := range brokers {
		fmt.Printf("%-22s %14.0f %10.2f\n", b.name, best[i], best[i]/best[len(best)-1])
	}
}

// credits keep at most window messages in flight: the publisher takes one per creditBatch
// messages (blocking when none is left), the subscriber gives one back per creditBatch.
type credits chan struct{}

const creditBatch = 256

func newCredits(window int64) credits { return make(credits, max(1, window/creditBatch)) }

func (c credits) sent(i int) {
	if i%creditBatch == 0 {
		c <- struct{}{}
	}
}

func (c credits) received(n int64) {
	if n%creditBatch == 0 {
		<-c
	}
}

var runID atomic.Int64

func rtbus(addr string, n int, payload []byte, window int64) (float64, error) {
	ctx := context.Background()
	id := runID.Add(1) // fresh names: the last run's clients may still be leaving
	sub, err := transport.Dial(ctx, addr, fmt.Sprintf("bench.sub.%d", id), transport.DialOptions{})
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	if err := sub.Subscribe(bus.QoSProcessed, "bench"); err != nil {
		return 0, err
	}
	pub, err := transport.Dial(ctx, addr, fmt.Sprintf("bench.pub.%d", id), transport.DialOptions{})
	if err != nil {
		return 0, err
	}
	defer pub.Close()
	cr := newCredits(window)
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			f, err := sub.Recv(ctx)
			if err != nil {
				done <- err
				return
			}
			f.Release() // read: the client may reuse its receive buffer
			cr.received(int64(i))
		}
		done <- nil
	}()
	start := time.Now()
	for i := range n {
		cr.sent(i)
		if err := pub.Publish(bus.QoSNo, "bench", payload); err != nil {
			return 0, err
		}
	}
	if err := <-done; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func natsRun(url string, n int, payload []byte, window int64) (float64, error) {
	sc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer sc.Close()
	var got int64 // the handler runs on one goroutine
	cr := newCredits(window)
	done := make(chan struct{})
	_, err = sc.Subscribe("bench", func(*nats.Msg) {
		got++
		cr.received(got)
		if got == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return 0, err
	}
	if err := sc.Flush(); err != nil {
		return 0, err
	}
	pc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	start := time.Now()
	for i := range n {
		cr.sent(i)
		if err := pc.Publish("bench", payload); err != nil {
			return 0, err
		}
	}
	pc.Flush()
	<-done
	return float64(n) / time.Since(start).Seconds(), nil
}
