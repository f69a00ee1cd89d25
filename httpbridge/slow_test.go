package httpbridge_test

import (
	"bufio"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge"
)

// TestSlowClient: a stream that does not read is disconnected once its queue fills, without
// slowing the inserts; resuming from the last id it got, it loses nothing and gets nothing
// twice.
func TestSlowClient(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.StreamQueue = 4 })
	u := e.signup("ann", "acme")
	addr := strings.TrimPrefix(e.url, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	c.(*net.TCPConn).SetReadBuffer(64 << 10) // a small window: less data fills the pipe
	c.Write([]byte("GET /sse?last_event_id=0&token=" + url.QueryEscape(u.token) + " HTTP/1.1\r\nHost: x\r\n\r\n"))

	const n = 30 // 30 x 200 KB: more than the socket buffers hold
	big := strings.Repeat("x", 200_000)
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		ids[e.insert(u, map[string]any{"event": "big", "data": big}).ID] = true
	}

	// Now read what the server had written before it dropped the stream.
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReaderSize(c, 1<<20)
	seen := map[string]int{}
	lastID := "0"
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the slow stream was not disconnected (%d events read, last id %s)", len(seen), lastID)
			}
			break // EOF: dropped
		}
		if strings.HasPrefix(line, "id:") {
			lastID = strings.TrimSpace(line[3:])
			seen[lastID]++
		}
	}
	if len(seen) >= n {
		t.Fatalf("the slow client got all %d events: not slow enough to test", n)
	}
	before := len(seen)
	rs := e.openStream("/sse", u.bearer(), map[string]string{"Last-Event-ID": lastID})
	for len(seen) < n {
		m := rs.next(t)
		seen[m.id]++
		if !ids[m.record(t).ID] {
			t.Fatalf("unknown event %s", m.record(t).ID)
		}
	}
	rs.quiet(t, 50*time.Millisecond)
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("publication %s delivered %d times", id, k)
		}
	}
	t.Logf("slow client dropped after %d of %d events; resumed from id %s", before, n, lastID)
}
