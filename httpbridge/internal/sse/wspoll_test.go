//go:build unix

package sse

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// countingListener wraps each TCP connection in a type that embeds it, as rtbusd's
// connection-counting listener does.
type countingListener struct{ net.Listener }

type countedConn struct{ *net.TCPConn }

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{c.(*net.TCPConn)}, nil
}

// TestWSOverWrappedConnHoldsNoGoroutine: WebSocket streams over a listener whose connections
// embed a *net.TCPConn hold no reading goroutine while idle (the keep-alive loop reads their
// control frames), and a client's ping is still answered.
func TestWSOverWrappedConnHoldsNoGoroutine(t *testing.T) {
	// Ticks every 2 s: the ping below is answered at the next one, and the streams, which
	// answer no ping themselves, stay open for 10 s at least.
	h := NewHub(HubOptions{KeepAlive: 4 * time.Second})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(r.Context(), w, r, StreamOptions{Tenant: "t"})
	}))
	srv.Listener = countingListener{srv.Listener}
	srv.Start()
	t.Cleanup(func() { h.Close(); srv.Close() })

	const n = 40
	base := runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		status, err := br.ReadString('\n')
		if err != nil || !strings.Contains(status, " 101 ") {
			t.Fatalf("handshake %d: %q %v", i, status, err)
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
		}
		conns[i], readers[i] = c, br
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.Streams() < n || runtime.NumGoroutine()-base >= n/2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams, %d goroutines more than before %d idle WebSockets", h.Streams(), runtime.NumGoroutine()-base, n)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if _, err := conns[0].Write(masked(true, opPing, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	for {
		var hd [2]byte
		if _, err := io.ReadFull(readers[0], hd[:]); err != nil {
			t.Fatalf("waiting for the pong: %v", err)
		}
		p := make([]byte, hd[1]&0x7f)
		if _, err := io.ReadFull(readers[0], p); err != nil {
			t.Fatal(err)
		}
		if hd[0]&0x0f == opPong {
			if string(p) != "hi" {
				t.Fatalf("pong %q, want the ping's payload", p)
			}
			return
		}
	}
}
