package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/rtbus/rtbus/bus"
)

var payload100 = make([]byte, 100)

func reportRate(b *testing.B, frames int) {
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkChannelReference is the yardstick of the one-to-one goal: a bare buffered channel
// passing a pointer between two goroutines.
func BenchmarkChannelReference(b *testing.B) {
	ch := make(chan *[]byte, bus.DefaultQueueSize)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range b.N {
			<-ch
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ch <- &payload100
	}
	wg.Wait()
	reportRate(b, b.N)
}

func newPair(b *testing.B, opts ...bus.ClientOption) (*bus.Broker, *bus.Client, *bus.Client) {
	b.Helper()
	br := bus.New()
	b.Cleanup(func() { br.Close() })
	tx, err := br.RegisterClient("tx")
	if err != nil {
		b.Fatal(err)
	}
	rx, err := br.RegisterClient("rx", opts...)
	if err != nil {
		b.Fatal(err)
	}
	return br, tx, rx
}

func benchSend(b *testing.B, qos bus.QoS) {
	// The receiver's queue makes the sender wait rather than overflow: the benchmark
	// measures throughput, not how fast the sender can outrun the reader.
	_, tx, rx := newPair(b, bus.WithBlockingSenders(1e9*60))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range b.N {
			if _, err := rx.Recv(context.Background()); err != nil {
				panic(err)
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := tx.Send(qos, "rx", payload100); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	reportRate(b, b.N)
}

func BenchmarkSendRecvQoS0(b *testing.B) { benchSend(b, bus.QoSNo) }
func BenchmarkSendRecvQoS1(b *testing.B) { benchSend(b, bus.QoSProcessed) }

func drain(c *bus.Client, n int, wg *sync.WaitGroup) {
	defer wg.Done()
	for range n {
		if _, err := c.Recv(context.Background()); err != nil {
			panic(err)
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, subs := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			br := bus.New()
			defer br.Close()
			tx, _ := br.RegisterClient("tx")
			var wg sync.WaitGroup
			for i := range subs {
				c, err := br.RegisterClient(fmt.Sprintf("sub.%d", i), bus.WithBlockingSenders(1e9*60))
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Subscribe(bus.QoSProcessed, "news/#"); err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go drain(c, b.N, &wg)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				tx.Publish(bus.QoSNo, "news/today", payload100)
			}
			wg.Wait()
			reportRate(b, b.N*subs)
		})
	}
}

// BenchmarkPublishSparse publishes to one subscriber while 10,000 subscriptions that do not
// match are present: its cost must stay that of publishing to one.
func BenchmarkPublishSparse(b *testing.B) {
	br := bus.New()
	defer br.Close()
	tx, _ := br.RegisterClient("tx")
	other, _ := br.RegisterClient("other")
	for i := range 10000 {
		other.Subscribe(bus.QoSNo, fmt.Sprintf("unit/%d/status", i), fmt.Sprintf("other/%d/#", i))
	}
	rx, _ := br.RegisterClient("rx", bus.WithBlockingSenders(1e9*60))
	rx.Subscribe(bus.QoSProcessed, "news/today")
	var wg sync.WaitGroup
	wg.Add(1)
	go drain(rx, b.N, &wg)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tx.Publish(bus.QoSNo, "news/today", payload100)
	}
	wg.Wait()
	reportRate(b, b.N)
}

func BenchmarkBroadcast100(b *testing.B) {
	br := bus.New()
	defer br.Close()
	tx, _ := br.RegisterClient("tx")
	var wg sync.WaitGroup
	for i := range 100 {
		c, _ := br.RegisterClient(fmt.Sprintf("worker.%d", i), bus.WithBlockingSenders(1e9*60))
		wg.Add(1)
		go drain(c, b.N, &wg)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tx.Broadcast(bus.QoSNo, "worker.*", payload100)
	}
	wg.Wait()
	reportRate(b, b.N*100)
}

// BenchmarkSendRecvBatchQoS0 reads with RecvBatch, as a socket writer does.
func BenchmarkSendRecvBatchQoS0(b *testing.B) {
	_, tx, rx := newPair(b, bus.WithBlockingSenders(1e9*60))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var batch []bus.Frame
		for n := 0; n < b.N; {
			var err error
			if batch, err = rx.RecvBatch(context.Background(), batch[:0], 1024); err != nil {
				panic(err)
			}
			n += len(batch)
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := tx.Send(bus.QoSNo, "rx", payload100); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	reportRate(b, b.N)
}
