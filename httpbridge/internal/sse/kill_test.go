package sse_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// TestKillEndsEveryTransportWithItsFinalMessage: one kill ending several SSE streams and
// several WebSockets gives each SSE stream the session_killed message and each WebSocket the
// close frame 4001, with the kill's reason; the streams of another session and those merely
// watching a revoked user stay open.
func TestKillEndsEveryTransportWithItsFinalMessage(t *testing.T) {
	h := sse.NewHub(sse.HubOptions{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		o := sse.StreamOptions{Tenant: "t", User: q.Get("user"), Session: q.Get("session"), Detach: true}
		if w := q.Get("watch"); w != "" {
			o.Watch = []string{w}
		}
		if q.Get("ws") != "" {
			h.ServeWS(r.Context(), w, r, o)
			return
		}
		h.Serve(r.Context(), w, o)
	}))
	t.Cleanup(func() { h.Close(); srv.Close() })

	type conn struct {
		ws bool
		br *bufio.Reader
	}
	open := func(query string, ws bool) conn {
		t.Helper()
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(wait))
		hd := "GET /?" + query + " HTTP/1.1\r\nHost: x\r\n"
		if ws {
			hd = "GET /?ws=1&" + query + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		}
		if _, err := io.WriteString(c, hd+"\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: reading the head: %v", query, err)
			}
			if line == "\r\n" {
				break
			}
		}
		return conn{ws, br}
	}
	// final reads up to the end of the stream and returns its last SSE message, or its
	// close frame as "close CODE REASON".
	final := func(c conn) string {
		t.Helper()
		if !c.ws {
			b, err := io.ReadAll(c.br)
			if err != nil {
				t.Fatal(err)
			}
			msgs := strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n\n")
			return msgs[len(msgs)-1]
		}
		for {
			var hd [2]byte
			if _, err := io.ReadFull(c.br, hd[:]); err != nil {
				t.Fatalf("waiting for the close frame: %v", err)
			}
			p := make([]byte, hd[1]&0x7f)
			if _, err := io.ReadFull(c.br, p); err != nil {
				t.Fatal(err)
			}
			if hd[0]&0x0f == 0x8 {
				return fmt.Sprintf("close %d %s", binary.BigEndian.Uint16(p), p[2:])
			}
		}
	}
	waitStreams := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(wait); h.Streams() != n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d streams, want %d", h.Streams(), n)
			}
		}
	}
	open1 := func(query string, ws bool) conn {
		t.Helper()
		n := h.Streams()
		c := open(query, ws)
		waitStreams(n + 1)
		return c
	}

	killed := []conn{
		open1("user=u1&session=s1", false), open1("user=u1&session=s1", true),
		open1("user=u1&session=s1", false), open1("user=u1&session=s1", true),
	}
	open1("user=u1&session=s2", true)
	if n := h.KillSession("s1"); n != len(killed) {
		t.Fatalf("KillSession killed %d streams, want %d", n, len(killed))
	}
	for _, c := range killed {
		want := "event:session_killed\ndata:{\"reason\":\"session killed\"}"
		if c.ws {
			want = fmt.Sprintf("close %d session killed", sse.CloseSessionKilled)
		}
		if got := final(c); !strings.HasPrefix(got, want) || !c.ws && strings.Contains(got, "\nid:") {
			t.Fatalf("last message %q, want %q (and no id)", got, want)
		}
	}

	waitStreams(1) // the killed streams left the hub

	revoked := []conn{open1("user=u2&session=s3", true), open1("user=u2&session=s3", false), open1("user=u2&session=s4", true)}
	open1("user=u1&session=s2&watch=u2", true)
	if n := h.KillUser("u2"); n != len(revoked) {
		t.Fatalf("KillUser killed %d streams, want %d", n, len(revoked))
	}
	for _, c := range revoked {
		want := "event:session_killed\ndata:{\"reason\":\"user revoked\"}"
		if c.ws {
			want = fmt.Sprintf("close %d user revoked", sse.CloseSessionKilled)
		}
		if got := final(c); !strings.HasPrefix(got, want) || !c.ws && strings.Contains(got, "\nid:") {
			t.Fatalf("last message %q, want %q (and no id)", got, want)
		}
	}
	waitStreams(2) // the other session's and the watcher's
	if n := h.Publish(sse.Message{Tenant: "t", Seq: 1, Event: "e", Record: []byte(`{}`), Data: []byte(`{}`)}); n != 2 {
		t.Fatalf("publication queued on %d streams, want 2", n)
	}
}
