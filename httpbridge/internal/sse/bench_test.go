package sse_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// A record as the bridge sends it: ~300 bytes, a timestamp-ish string with colons, some
// non-ASCII.
var benchRecord, _ = json.Marshal(map[string]any{
	"id": "0b6c3a1e-8d0a-4d7e-9d55-3f7c2b1a9e10", "event": "chat.message", "tenant_id": "acme",
	"collection_id": "4f1d2c3b-aaaa-bbbb-cccc-123456789abc", "user_id": "9a8b7c6d-1111-2222-3333-444455556666",
	"timestamp": 1764050000, "published": true, "cancelled": false,
	"data": map[string]any{"text": "Réunion à 10:30 — café ☕", "at": "2026-11-25T10:30:00Z"},
})

var asciiRecord, _ = json.Marshal(map[string]any{
	"id": "0b6c3a1e-8d0a-4d7e-9d55-3f7c2b1a9e10", "event": "chat.message", "tenant_id": "acme",
	"collection_id": "4f1d2c3b-aaaa-bbbb-cccc-123456789abc", "user_id": "9a8b7c6d-1111-2222-3333-444455556666",
	"timestamp": 1764050000, "published": true, "cancelled": false,
	"data": map[string]any{"text": "meeting at ten thirty", "n": 12345},
})

func BenchmarkAppendMessage(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{{"ascii", asciiRecord}, {"colons+unicode", benchRecord}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for b.Loop() {
				buf = sse.AppendMessage(buf[:0], "chat.message", bc.in, 123456, 0)
			}
		})
	}
}

// BenchmarkFanout publishes b.N records to N streams served over loopback HTTP and read by N
// real clients in this process (SSE: net/http clients; WebSocket: raw TCP connections that
// parse the frames); deliveries/s counts messages received by the clients. allocs/op is per
// publication and includes both sides.
func BenchmarkFanout(b *testing.B) {
	for _, name := range []string{"attached", "detached", "websocket"} {
		for _, n := range []int{100, 1000} {
			benchFanout(b, name, n)
		}
	}
}

func benchFanout(b *testing.B, name string, n int) {
	b.Run(fmt.Sprintf("%s/streams=%d", name, n), func(b *testing.B) {
		hub := sse.NewHub(sse.HubOptions{QueueSize: 1 << 20})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o := sse.StreamOptions{Tenant: "t", Detach: name != "attached"}
			if name == "websocket" {
				hub.ServeWS(r.Context(), w, r, o)
				return
			}
			hub.Serve(r.Context(), w, o)
		}))
		defer srv.Close()
		defer hub.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr}
		var got atomic.Int64
		var wg sync.WaitGroup
		var bodies []io.Closer
		for range n {
			var body io.ReadCloser
			count := countSSE
			if name == "websocket" {
				c, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
					"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
				body, count = c, countWS
			} else {
				resp, err := cl.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				body = resp.Body
			}
			bodies = append(bodies, body)
			wg.Add(1)
			go func() {
				defer wg.Done()
				count(bufio.NewReaderSize(body, 32<<10), &got)
			}()
		}
		for hub.Streams() < n {
			time.Sleep(time.Millisecond)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			hub.Publish(sse.Message{Tenant: "t", Seq: uint64(i + 1), Event: "chat.message", Record: asciiRecord})
		}
		want := int64(b.N) * int64(n)
		deadline := time.Now().Add(time.Minute)
		for got.Load() < want && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		el := time.Since(start)
		b.StopTimer()
		if got.Load() < want {
			b.Fatalf("delivered %d of %d", got.Load(), want)
		}
		b.ReportMetric(float64(want)/el.Seconds(), "deliveries/s")
		for _, c := range bodies {
			c.Close()
		}
		wg.Wait()
	})
}

// countSSE counts the messages with an id: line until the stream ends.
func countSSE(br *bufio.Reader, got *atomic.Int64) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if bytes.HasPrefix(line, []byte("id:")) {
			got.Add(1)
		}
	}
}

// countWS skips the handshake's response, then counts the text frames until the stream ends.
func countWS(br *bufio.Reader, got *atomic.Int64) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) == 2 {
			break
		}
	}
	h := make([]byte, 2)
	for {
		if _, err := io.ReadFull(br, h); err != nil {
			return
		}
		n := int(h[1] & 0x7f)
		op := h[0] & 0x0f
		switch n {
		case 126:
			if _, err := io.ReadFull(br, h); err != nil {
				return
			}
			n = int(h[0])<<8 | int(h[1])
		case 127:
			return // no message of this benchmark is that long
		}
		if _, err := br.Discard(n); err != nil {
			return
		}
		if op == 1 {
			got.Add(1)
		}
	}
}

// The idle-stream server runs in a child process (this test binary re-executed) so that the
// client side of 10,000 connections is not counted in its memory.
const idleServerEnv = "RTBUS_SSE_IDLE_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(idleServerEnv) == "1" {
		idleServer()
		return
	}
	os.Exit(m.Run())
}

// idleServer serves streams on 127.0.0.1 and answers each line on stdin with its memory:
// "streams heapInuse stackInuse sys" after a GC.
func idleServer() {
	detach := os.Getenv("RTBUS_SSE_IDLE_DETACH") == "1"
	ws := os.Getenv("RTBUS_SSE_IDLE_WS") == "1"
	hub := sse.NewHub(sse.HubOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		return
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts := sse.StreamOptions{Tenant: "t", User: r.URL.Query().Get("u"), Detach: detach}
		if ws {
			hub.ServeWS(r.Context(), w, r, opts)
			return
		}
		hub.Serve(r.Context(), w, opts)
	}))
	fmt.Println(ln.Addr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Println(hub.Streams(), ms.HeapInuse, ms.StackInuse, ms.Sys)
	}
}

// BenchmarkIdleStreams opens RTBUS_SSE_IDLE_STREAMS (default 10,000) idle streams over
// loopback to a server in a child process and reports the server's memory per stream, for
// attached and detached SSE streams, and WebSocket streams.
// Run it alone: go test -run '^$' -bench IdleStreams -benchtime 1x. It needs twice that
// many file descriptors (one per side).
func BenchmarkIdleStreams(b *testing.B) {
	b.Run("attached", func(b *testing.B) { benchIdle(b, false, false) })
	b.Run("detached", func(b *testing.B) { benchIdle(b, true, false) })
	b.Run("websocket", func(b *testing.B) { benchIdle(b, true, true) })
}

func benchIdle(b *testing.B, detach, ws bool) {
	n := 10000
	if s := os.Getenv("RTBUS_SSE_IDLE_STREAMS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), idleServerEnv+"=1")
	if detach {
		cmd.Env = append(cmd.Env, "RTBUS_SSE_IDLE_DETACH=1")
	}
	upgrade := ""
	if ws {
		cmd.Env = append(cmd.Env, "RTBUS_SSE_IDLE_WS=1")
		upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	out := bufio.NewScanner(stdout)
	out.Scan()
	addr := out.Text()
	measure := func() (streams int, heap, stack, sys float64) {
		io.WriteString(stdin, "\n")
		if !out.Scan() {
			b.Fatal("idle server gone")
		}
		f := strings.Fields(out.Text())
		streams, _ = strconv.Atoi(f[0])
		h, _ := strconv.ParseFloat(f[1], 64)
		s, _ := strconv.ParseFloat(f[2], 64)
		y, _ := strconv.ParseFloat(f[3], 64)
		return streams, h, s, y
	}
	// Warm the server up with one stream and back, so one-time costs are in the baseline.
	if c, err := net.Dial("tcp", addr); err == nil {
		fmt.Fprintf(c, "GET /?u=warm HTTP/1.1\r\nHost: x\r\n%s\r\n", upgrade)
		for s, _, _, _ := measure(); s != 1; s, _, _, _ = measure() {
		}
		c.Close()
	}
	for s, _, _, _ := measure(); s != 0; s, _, _, _ = measure() {
		time.Sleep(10 * time.Millisecond)
	}
	_, h0, s0, y0 := measure()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	b.ResetTimer()
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("stream %d: %v (ulimit -n?)", i, err)
		}
		conns = append(conns, c)
		if _, err := fmt.Fprintf(c, "GET /?u=u%d HTTP/1.1\r\nHost: x\r\n%s\r\n", i, upgrade); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	var s1 int
	var h1, st1, y1 float64
	for {
		s1, h1, st1, y1 = measure()
		if s1 == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	if s1 != n {
		b.Fatalf("%d of %d streams open", s1, n)
	}
	b.ReportMetric((h1-h0)/float64(n), "heap-B/stream")
	b.ReportMetric((st1-s0)/float64(n), "stack-B/stream")
	b.ReportMetric((h1-h0+st1-s0)/float64(n), "B/stream")
	b.ReportMetric((y1-y0)/float64(n), "sys-B/stream")
}
