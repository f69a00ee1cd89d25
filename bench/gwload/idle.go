package main

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/rtbus/rtbus/internal/procstat"
)

// idleStreams opens c.idle streams over raw TCP (no reader goroutines: the client side stays
// small) and prints the growth of the server's RSS per stream.
func idleStreams(c *config) error {
	tenant, token, err := signup(c.base)
	if err != nil {
		return err
	}
	u, _ := url.Parse(c.base)
	q := "?token=" + url.QueryEscape(token)
	var req, ok string
	switch c.transport {
	case "ws":
		req = "GET /ws/" + url.PathEscape(tenant) + q + " HTTP/1.1\r\nHost: " + u.Host +
			"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
		ok = "HTTP/1.1 101"
	case "sse":
		req = "GET /events/" + url.PathEscape(tenant) + q + " HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n"
		ok = "HTTP/1.1 200"
	default:
		return fmt.Errorf("idle mode takes -transport ws or sse")
	}
	rss0 := rss(c.pid)
	conns := make([]net.Conn, 0, c.idle)
	defer func() {
		for _, x := range conns {
			x.Close()
		}
	}()
	buf := make([]byte, 4096)
	start := time.Now()
	for i := range c.idle {
		x, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
		if err != nil {
			return fmt.Errorf("stream %d: %v (ulimit -n?)", i, err)
		}
		conns = append(conns, x)
		x.Write([]byte(req))
		x.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := x.Read(buf)
		if err != nil || !bytes.HasPrefix(buf[:n], []byte(ok)) {
			return fmt.Errorf("stream %d: %v %q", i, err, firstLine(buf[:n]))
		}
	}
	time.Sleep(2 * time.Second) // let the server settle (a GC cycle or two)
	rss1 := rss(c.pid)
	fmt.Printf("%s: %d idle streams (opened in %.1fs): server RSS %.1f MiB -> %.1f MiB, %.0f bytes per stream\n",
		c.transport, c.idle, time.Since(start).Seconds()-2, float64(rss0)/(1<<20), float64(rss1)/(1<<20), float64(rss1-rss0)/float64(c.idle))
	return nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// rss is the resident memory of pid in bytes (0 when unknown).
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	n, _ := procstat.RSS(pid)
	return n
}
