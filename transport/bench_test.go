package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
)

// BenchmarkUnixSendRecvQoS0: one raw client streams 100-byte one-to-one frames at QoS 0 over a
// UNIX socket to another, which reads them; frames/s counts frames read. QoS 0 has no flow
// control, and a receiver that falls a queue behind is dropped (WIRE.md §7), so the sender
// keeps at most window frames in flight, as a real producer must.
func BenchmarkUnixSendRecvQoS0(b *testing.B) {
	_, path := testServerB(b)
	tx := dialRawB(b, path, "tx")
	rx := dialRawB(b, path, "rx")
	one := clientFrame(0, opMessage, "rx\x00"+strings.Repeat("x", 100))
	const perWrite = 64
	chunk := make([]byte, 0, len(one)*perWrite)
	for range perWrite {
		chunk = append(chunk, one...)
	}
	cr := newCredits()
	done := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(rx.nc, 64<<10)
		var hdr [6]byte
		for n := 0; n < b.N; {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				done <- fmt.Errorf("after %d of %d frames, last % x: %w", n, b.N, hdr, err)
				return
			}
			if hdr[0] == kindPing {
				continue
			}
			if _, err := r.Discard(int(binary.LittleEndian.Uint32(hdr[1:5]))); err != nil {
				done <- err
				return
			}
			n++
			cr.received(n)
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += perWrite {
		for i := range perWrite {
			cr.sent(sent + i)
		}
		w := chunk
		if left := b.N - sent; left < perWrite {
			w = chunk[:left*len(one)]
		}
		if _, err := tx.nc.Write(w); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// The benchmarks below run transport.Dial clients against a broker over UNIX sockets, with
// 100-byte payloads, on 1 and 8 connections at once; frames/s counts frames read by their
// receivers, summed over the connections.

var connCounts = []int{1, 8}

// BenchmarkSendRecv: each connection sends one-to-one frames to itself while a goroutine of
// its own reads them, at QoS 0 (sent without waiting) and at QoS 1 (each send waits for its
// ack, one at a time per connection).
func BenchmarkSendRecv(b *testing.B) {
	for _, qos := range []bus.QoS{bus.QoSNo, bus.QoSProcessed} {
		for _, n := range connCounts {
			b.Run(fmt.Sprintf("qos=%d/conns=%d", qos, n), func(b *testing.B) {
				_, path := testServerB(b)
				conns := make([]*Client, n)
				for i := range conns {
					conns[i] = dialB(b, path, fmt.Sprintf("c%d", i))
				}
				runConns(b, conns, func(c *Client, frames int, cr credits) error {
					payload := make([]byte, 100)
					for i := range frames {
						cr.sent(i)
						if err := c.Send(qos, c.Name(), payload); err != nil {
							return err
						}
					}
					return nil
				}, func(c *Client, frames int, cr credits) error {
					return recvN(c, frames, cr)
				})
			})
		}
	}
}

// BenchmarkPublish10: publishers (1 or 8 connections) publish at QoS 0 on a topic that 10
// subscriber connections subscribe to; frames/s counts deliveries.
func BenchmarkPublish10(b *testing.B) {
	for _, n := range connCounts {
		b.Run(fmt.Sprintf("pubs=%d", n), func(b *testing.B) {
			_, path := testServerB(b)
			const subs = 10
			subc := make([]*Client, subs)
			crs := make([]credits, subs)
			for i := range subc {
				subc[i] = dialB(b, path, fmt.Sprintf("sub%d", i))
				if err := subc[i].Subscribe(bus.QoSProcessed, "bench/#"); err != nil {
					b.Fatal(err)
				}
				crs[i] = newCredits()
			}
			pubs := make([]*Client, n)
			for i := range pubs {
				pubs[i] = dialB(b, path, fmt.Sprintf("pub%d", i))
			}
			per := b.N / n
			total := per * n
			errc := make(chan error, subs+n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range subc {
				go func() { errc <- recvN(subc[i], total, crs[i]) }()
			}
			var sent atomic.Int64 // credits are taken by one publisher at a time
			var mu sync.Mutex
			for _, p := range pubs {
				go func() {
					payload := make([]byte, 100)
					for range per {
						if k := sent.Add(1) - 1; k%creditBatch == 0 {
							mu.Lock()
							for _, cr := range crs {
								cr.sent(int(k))
							}
							mu.Unlock()
						}
						if err := p.Publish(bus.QoSNo, "bench/x", payload); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
			}
			for range subs + n {
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total*subs)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkPubSub1: one publisher, one subscriber, 128-byte payloads at QoS 0: the case
// bench/nats.sh compares with NATS, here against a broker in the same process.
func BenchmarkPubSub1(b *testing.B) {
	_, path := testServerB(b)
	sub, pub := dialB(b, path, "sub"), dialB(b, path, "pub")
	if err := sub.Subscribe(bus.QoSProcessed, "bench"); err != nil {
		b.Fatal(err)
	}
	runConns(b, []*Client{pub}, func(c *Client, frames int, cr credits) error {
		payload := make([]byte, 128)
		for i := range frames {
			cr.sent(i)
			if err := c.Publish(bus.QoSNo, "bench", payload); err != nil {
				return err
			}
		}
		return nil
	}, func(_ *Client, frames int, cr credits) error {
		return recvN(sub, frames, cr)
	})
}

// BenchmarkSendQoS1Missing: acks per second for QoS 1 sends to a client that does not exist,
// each connection one at a time (BUS/RT's send.qos.processed stage).
func BenchmarkSendQoS1Missing(b *testing.B) {
	for _, n := range connCounts {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			_, path := testServerB(b)
			conns := make([]*Client, n)
			for i := range conns {
				conns[i] = dialB(b, path, fmt.Sprintf("c%d", i))
			}
			per := b.N / n
			errc := make(chan error, n)
			b.ReportAllocs()
			b.ResetTimer()
			for _, c := range conns {
				go func() {
					payload := make([]byte, 100)
					for range per {
						if err := c.Send(bus.QoSProcessed, "nobody", payload); !errors.Is(err, bus.ErrNotRegistered) {
							errc <- fmt.Errorf("want ErrNotRegistered, got %v", err)
							return
						}
					}
					errc <- nil
				}()
			}
			for range n {
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(per*n)/b.Elapsed().Seconds(), "acks/s")
		})
	}
}

// runConns splits b.N frames over conns, running send and recv for each connection at once,
// and reports frames/s.
func runConns(b *testing.B, conns []*Client, send, recv func(c *Client, frames int, cr credits) error) {
	per := b.N / len(conns)
	errc := make(chan error, 2*len(conns))
	b.ReportAllocs()
	b.ResetTimer()
	for _, c := range conns {
		cr := newCredits()
		go func() { errc <- recv(c, per, cr) }()
		go func() { errc <- send(c, per, cr) }()
	}
	for range 2 * len(conns) {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(per*len(conns))/b.Elapsed().Seconds(), "frames/s")
}

func recvN(c *Client, frames int, cr credits) error {
	ctx := context.Background()
	for n := 1; n <= frames; n++ {
		f, err := c.Recv(ctx)
		if err != nil {
			return fmt.Errorf("%s: after %d of %d frames: %w", c.Name(), n-1, frames, err)
		}
		f.Release() // read: its slab may be reused
		cr.received(n)
	}
	return nil
}

// credits bound the frames in flight from a sender to a receiver without spinning: QoS 0 has
// no flow control, and a receiver a whole queue behind is dropped (WIRE.md §7), so a real
// producer must do the same. The sender takes a credit per creditBatch frames, blocking when
// window frames are in flight; the receiver returns one per creditBatch frames read.
type credits chan struct{}

const (
	window      = 4096
	creditBatch = 256
)

func newCredits() credits { return make(credits, window/creditBatch) }

// sent is called before sending frame i (from 0).
func (c credits) sent(i int) {
	if i%creditBatch == 0 {
		c <- struct{}{}
	}
}

// received is called after receiving frame n (from 1).
func (c credits) received(n int) {
	if n%creditBatch == 0 {
		<-c
	}
}

// dialB connects a Go client for a benchmark; it closes with the benchmark.
func dialB(b *testing.B, path, name string) *Client {
	b.Helper()
	c, err := Dial(context.Background(), path, name, DialOptions{Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
