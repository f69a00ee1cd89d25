package httpbridge_test

import (
	"bufio"
	"context"
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
