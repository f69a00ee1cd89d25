package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/rtbus/rtbus/internal/procstat"
)

// idleClients opens n SSE streams to rawURL over raw TCP (no reader goroutines: the client
// side stays small), checks each answers 200, prints the server's resident memory before and
// after if pid is set, then holds them for hold and closes them.
func idleClients(n int, rawURL string, pid int, hold time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	if h := u.Hostname(); h != "localhost" && !net.ParseIP(h).IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", rawURL)
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n\r\n"
	rss0 := rss(pid)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 4096)
	for i := range n {
		c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
		if err != nil {
			return fmt.Errorf("stream %d: %v (ulimit -n?)", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte(req)); err != nil {
			return err
		}
		// The status line, and whatever the server sent at once (headers, the state).
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("stream %d: %v", i, err)
		}
		if !bytes.HasPrefix(buf[:m], []byte("HTTP/1.1 200")) {
			line, _, _ := bufio.NewReader(bytes.NewReader(buf[:m])).ReadLine()
			return fmt.Errorf("stream %d: %s", i, line)
		}
	}
	time.Sleep(2 * time.Second) // let the server settle (a GC cycle or two)
	rss1 := rss(pid)
	if pid > 0 {
		fmt.Printf("%d idle streams: server RSS %.1f MiB -> %.1f MiB, %.0f bytes per stream\n",
			n, float64(rss0)/(1<<20), float64(rss1)/(1<<20), float64(rss1-rss0)/float64(n))
	} else {
		fmt.Printf("%d idle streams open\n", n)
	}
	time.Sleep(hold)
	return nil
}

// rss is the resident memory of process pid in bytes (0 if unknown).
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	n, _ := procstat.RSS(pid)
	return n
}
