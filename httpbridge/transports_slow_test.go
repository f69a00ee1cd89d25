package httpbridge_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// scSlow: an SSE or WebSocket client that stops reading is disconnected once its queue fills,
// and resumes from the last id it got with nothing lost or doubled; a long-polling client
// that stops polling gets everything later, in bounded replies.
func scSlow(t *testing.T, e *env, tr, _ streamTransport) {
	u := e.signup("ann", "acme")
	const n = 30 // 30 x 200 KB: more than the socket buffers hold
	big := strings.Repeat("x", 200_000)
	var (
		raw  net.Conn
		last = "0"
		seen = map[string]int{}
		poll *tclient
	)
	if tr.name == "poll" {
		poll = mustOpen(t, tr, e, "?wait=0", u.bearer(), nil) // it polls on as fast as it can…
		poll.close()                                          // …but it stops now.
	} else {
		raw = rawStream(t, e, tr.name, u)
	}
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		ids[e.insert(u, map[string]any{"event": "big", "data": big}).ID] = true
	}
	if raw != nil {
		got := readRaw(t, raw, tr.name)
		if len(got) >= n {
			t.Fatalf("the slow client got all %d events: not slow enough to test", n)
		}
		for _, id := range got {
			seen[id]++
			last = id
		}
	}
	before := len(seen)
	rs := mustOpen(t, tr, e, "?last_event_id="+last, u.bearer(), nil)
	for len(seen) < n {
		m := rs.next(t)
		seen[m.id]++
		if !ids[m.record(t).ID] {
			t.Fatalf("unknown event %+v", m.id)
		}
	}
	rs.quiet(t, 100*time.Millisecond)
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("publication %s delivered %d times", id, k)
		}
	}
	t.Logf("%s: slow client had %d of %d events; resumed from id %s", tr.name, before, n, last)
}

// rawStream opens an SSE or WebSocket stream on a socket with a small receive buffer and
// reads nothing.
func rawStream(t *testing.T, e *env, kind string, u user) net.Conn {
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	q := "?last_event_id=0&token=" + url.QueryEscape(u.token)
	if kind == "sse" {
		c.Write([]byte("GET /sse" + q + " HTTP/1.1\r\nHost: x\r\n\r\n"))
	} else {
		c.Write([]byte("GET /ws" + q + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
	}
	return c
}

// readRaw reads what the server wrote before it dropped the stream and returns the ids;
// a stream still open after 20 s fails the test.
func readRaw(t *testing.T, c net.Conn, kind string) []string {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReaderSize(c, 1<<20)
	var ids []string
	timeout := func(err error) {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the slow stream was not disconnected (%d events read)", len(ids))
		}
	}
	for { // the response head
		line, err := r.ReadString('\n')
		if err != nil {
			timeout(err)
			t.Fatalf("response head: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	for {
		if kind == "sse" {
			line, err := r.ReadString('\n')
			if err != nil {
				timeout(err)
				return ids
			}
			if strings.HasPrefix(line, "id:") {
				ids = append(ids, strings.TrimSpace(line[3:]))
			}
			continue
		}
		op, p, err := readServerFrame(r)
		if err != nil {
			timeout(err)
			return ids
		}
		if op == 1 {
			var j jsonMsg
			if err := json.Unmarshal(p, &j); err != nil {
				t.Fatalf("frame %q: %v", p, err)
			}
			ids = append(ids, j.ID)
		}
	}
}

// readServerFrame reads one unmasked WebSocket frame.
func readServerFrame(r io.Reader) (op byte, p []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, err = io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, err = io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	if err != nil {
		return 0, nil, err
	}
	p = make([]byte, n)
	_, err = io.ReadFull(r, p)
	return h[0] & 0x0f, p, err
}
