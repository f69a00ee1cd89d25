package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

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
	const window = 4096
	var received atomic.Int64
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
			received.Store(int64(n))
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += perWrite {
		for int64(sent)-received.Load() > window {
			runtime.Gosched()
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

// BenchmarkDialSendRecvQoS0: the Go socket client on both ends, over UNIX sockets, 100-byte
// one-to-one frames at QoS 0, at most window in flight.
func BenchmarkDialSendRecvQoS0(b *testing.B) {
	_, path := testServerB(b)
	tx, rx := dialB(b, path, "tx"), dialB(b, path, "rx")
	payload := make([]byte, 100)
	const window = 4096
	var received atomic.Int64
	done := make(chan error, 1)
	go func() {
		for n := 1; n <= b.N; n++ {
			if _, err := rx.Recv(context.Background()); err != nil {
				done <- err
				return
			}
			received.Store(int64(n))
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for int64(i)-received.Load() > window {
			runtime.Gosched()
		}
		if err := tx.Send(bus.QoSNo, "rx", payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkDialSendQoS1Missing: acks per second for QoS 1 sends to a client that does not
// exist, one at a time (the BUS/RT benchmark's send.qos.processed stage with one worker).
func BenchmarkDialSendQoS1Missing(b *testing.B) {
	_, path := testServerB(b)
	tx := dialB(b, path, "tx")
	payload := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := tx.Send(bus.QoSProcessed, "nobody", payload); !errors.Is(err, bus.ErrNotRegistered) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acks/s")
}

// dialB connects a Go client for a benchmark; it closes with the benchmark.
func dialB(b *testing.B, path, name string) *Client {
	b.Helper()
	c, err := Dial(context.Background(), path, name, DialOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
