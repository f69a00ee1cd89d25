package httpbridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rtbus/rtbus/httpbridge"
)

// TestWebSocketControl: the WebSocket stream is one-way (a data frame from the client closes
// it with 1003), answers a client's close with its own, and closes a client that leaves its
// pings unanswered for two periods.
func TestWebSocketControl(t *testing.T) {
	e := newEnv(t, func(c *httpbridge.Config) { c.KeepAlive = 100 * time.Millisecond })
	u := e.signup("ann", "acme")
	wsURL := "ws" + strings.TrimPrefix(e.url, "http") + "/ws?token=" + url.QueryEscape(u.token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(ctx, websocket.MessageText, []byte("hello"))
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Fatalf("after a data frame: %v, want close 1003", err)
	}

	c, _, err = websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}

	// A client that never answers pings (it reads, but writes nothing).
	raw := rawStream(t, e, "ws", u)
	ended := make(chan error, 1)
	go func() {
		r := bufio.NewReader(raw)
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		for {
			if _, _, err := readServerFrame(r); err != nil {
				ended <- err
				return
			}
		}
	}()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-ended:
			return
		case <-deadline:
			t.Fatal("a client answering no ping still open after 10 s")
		case <-time.After(20 * time.Millisecond):
			e.clock.Advance(100 * time.Millisecond) // the hub's clock times the pongs
		}
	}
}

// TestWebSocketOverHTTP2: a WebSocket request over HTTP/2 (which has no Upgrade) is answered
// 400 with a JSON error that says WebSocket needs HTTP/1.1, not an empty 200.
func TestWebSocketOverHTTP2(t *testing.T) {
	e := newEnv(t, nil)
	u := e.signup("ann", "acme")
	hs := httptest.NewUnstartedServer(e.srv.Handler())
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(hs.Close)
	req, _ := http.NewRequest("GET", hs.URL+"/ws?token="+url.QueryEscape(u.token), nil)
	req.Header.Set("Sec-WebSocket-Version", "13") // Connection and Upgrade do not exist in HTTP/2
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.ProtoMajor != 2 ||
		resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.Error, "HTTP/1.1") {
		t.Fatalf("HTTP/%d %d %q (%v), want 400 saying WebSocket needs HTTP/1.1", resp.ProtoMajor, resp.StatusCode, body.Error, err)
	}
}
