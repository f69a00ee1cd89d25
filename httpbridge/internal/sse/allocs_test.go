package sse_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// TestPublishAllocatesNothingPerStream: a publication to idle detached streams allocates what
// it shares (the queued item, its encoding), not anything per stream: a stream's write and
// the goroutine that makes it cost no heap allocation.
func TestPublishAllocatesNothingPerStream(t *testing.T) {
	const n = 100
	h := sse.NewHub(sse.HubOptions{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Serve(r.Context(), w, sse.StreamOptions{Tenant: "t", Detach: true})
	}))
	t.Cleanup(func() { h.Close(); srv.Close() })
	var got atomic.Int64 // bytes read by all the clients
	for range n {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		go func() {
			var buf [4096]byte
			for {
				k, err := c.Read(buf[:])
				got.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
	for deadline := time.Now().Add(wait); h.Streams() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams, want %d", h.Streams(), n)
		}
	}
	rec := []byte(`{"id":"0b6c3a1e","event":"e","data":{"n":1}}`)
	seq := uint64(1000) // ids of one width: every message the same length
	publish := func() {
		want := got.Load() + n*int64(len(sse.AppendMessage(nil, "e", rec, seq, 0)))
		h.Publish(sse.Message{Tenant: "t", Seq: seq, Event: "e", Record: rec, Data: rec})
		seq++
		for deadline := time.Now().Add(wait); got.Load() < want; time.Sleep(50 * time.Microsecond) {
			if time.Now().After(deadline) {
				panic(fmt.Sprintf("delivered %d bytes, want %d", got.Load(), want))
			}
		}
	}
	for range 5 { // the head and the first message (with retry:) are past; queues are made
		publish()
	}
	a := testing.AllocsPerRun(50, publish)
	t.Logf("%.1f allocations per publication to %d streams", a, n)
	if a > n/4 {
		t.Fatalf("%.0f allocations per publication to %d streams", a, n)
	}
}
