// Command idlestreams measures the memory an idle SSE stream costs a running server: it reads
// the server's resident set (from /proc, by -pid), opens -n streams over raw TCP (so the
// client holds a socket per stream and nothing else), waits until each has its headers and
// the first message of the backlog, lets the server settle, and reads the resident set again.
// bench/httpbridge.sh runs it against rtbusd's HTTP bridge. Loopback only.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	log.Fatal("no VmRSS")
	return 0
}

func main() {
	target := flag.String("url", "", "stream URL, e.g. http://127.0.0.1:3200/events/bench?token=JWT")
	n := flag.Int("n", 10000, "streams to open")
	pid := flag.Int("pid", 0, "server process id")
	settle := flag.Duration("settle", 3*time.Second, "wait before each reading")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" || *pid == 0 {
		log.Fatal("need -url http://… and -pid")
	}
	time.Sleep(*settle)
	before := rss(*pid)
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n\r\n"
	conns := make([]net.Conn, *n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var mu sync.Mutex
	var failed int
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
			if err == nil {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err = c.Write([]byte(req)); err == nil {
					// Headers, then the first backlog message's end.
					r := bufio.NewReaderSize(c, 512)
					var line string
					for err == nil && !strings.HasPrefix(line, "data:") {
						line, err = r.ReadString('\n')
					}
				}
				c.SetDeadline(time.Time{})
			}
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				if c != nil {
					c.Close()
				}
				return
			}
			conns[i] = c
		}(i)
	}
	wg.Wait()
	if failed > 0 {
		log.Fatalf("%d of %d streams failed", failed, *n)
	}
	time.Sleep(*settle)
	after := rss(*pid)
	fmt.Printf("%d idle streams: server RSS %.1f MiB -> %.1f MiB, %.1f KB per stream\n",
		*n, float64(before)/(1<<20), float64(after)/(1<<20), float64(after-before)/float64(*n)/1000)
	for _, c := range conns {
		c.Close()
	}
}
