package sse

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestWSClientCloseCodes: over a real listener, a client's close frame is answered with its
// own code when the code is one a client may send, with 1000 when it has none, and with 1002
// (1007 for a reason that is not UTF-8) when the client may not send it (RFC 6455 §7.4).
func TestWSClientCloseCodes(t *testing.T) {
	// The hub reads frames at each 500 ms tick; a client that answers no ping is closed two
	// seconds after it, which leaves a loaded machine time to send the close first.
	h := NewHub(HubOptions{KeepAlive: time.Second})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(r.Context(), w, r, StreamOptions{Tenant: "t"})
	}))
	t.Cleanup(func() { h.Close(); srv.Close() })
	code := func(c int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(c)) }
	for _, c := range []struct {
		payload []byte
		want    int
	}{
		{nil, CloseNormal},
		{code(1000), 1000}, {code(1001), 1001}, {append(code(1011), "bye"...), 1011},
		{code(3000), 3000}, {code(4999), 4999},
		{code(1005), CloseProtocolError}, {code(1006), CloseProtocolError},
		{code(1015), CloseProtocolError}, {code(1004), CloseProtocolError},
		{code(999), CloseProtocolError}, {code(0), CloseProtocolError}, {code(2999), CloseProtocolError},
		{code(5000), CloseProtocolError}, {code(65535), CloseProtocolError},
		{[]byte{0x03}, CloseProtocolError},
		{append(code(1000), 0xff, 0xfe), CloseInvalidData},
	} {
		t.Run(fmt.Sprintf("% x", c.payload), func(t *testing.T) {
			t.Parallel()
			conn, br := dialWS(t, srv.Listener.Addr().String())
			if _, err := conn.Write(masked(true, opClose, c.payload)); err != nil {
				t.Fatal(err)
			}
			for { // pings may come first
				var hd [2]byte
				if _, err := io.ReadFull(br, hd[:]); err != nil {
					t.Fatalf("waiting for the close: %v", err)
				}
				p := make([]byte, hd[1]&0x7f)
				if _, err := io.ReadFull(br, p); err != nil {
					t.Fatal(err)
				}
				if hd[0]&0x0f != opClose {
					continue
				}
				if len(p) < 2 || int(binary.BigEndian.Uint16(p)) != c.want || !utf8.Valid(p[2:]) {
					t.Fatalf("close % x, want code %d", p, c.want)
				}
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("after the close: %v, want the connection closed", err)
				}
				return
			}
		})
	}
}

// dialWS opens a WebSocket over raw TCP and reads the handshake's answer.
func dialWS(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return c, br
}

// TestWSHandshakeNotTakenOver: a handshake the hub cannot serve, one over HTTP/2 or one whose
// connection cannot be taken over, is refused with ErrHandshake and nothing written, so that
// the caller answers it (an HTTP/2 client used to get an empty 200).
func TestWSHandshakeNotTakenOver(t *testing.T) {
	h := NewHub(HubOptions{})
	t.Cleanup(func() { h.Close() })
	req := func(major int) *http.Request {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.ProtoMajor, r.ProtoMinor = major, 0
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		return r
	}
	for _, c := range []struct {
		name  string
		major int
		why   string
	}{{"HTTP/2", 2, "HTTP/1.1"}, {"no Hijack", 1, "taken over"}} {
		w := httptest.NewRecorder() // it has no Hijack
		err := h.ServeWS(t.Context(), w, req(c.major), StreamOptions{Tenant: "t"})
		if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: %v, want ErrHandshake saying %q", c.name, err, c.why)
		}
		if w.Code != 200 || w.Body.Len() != 0 || len(w.Header()) != 0 || w.Flushed {
			t.Errorf("%s: something was written: %d %v %q", c.name, w.Code, w.Header(), w.Body)
		}
		if n := h.Streams(); n != 0 {
			t.Errorf("%s: %d streams", c.name, n)
		}
	}
}

// FuzzParseClose: whatever a close frame carries, its code is one a client may send and its
// reason UTF-8, or it is refused with 1002 or 1007.
func FuzzParseClose(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03, 0xe8, 'o', 'k'})
	f.Add([]byte{0x03, 0xed})
	f.Add([]byte{0x03, 0xe8, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		code, err := parseClose(p)
		var ce *closeError
		switch {
		case err == nil && len(p) == 0:
			if code != 1005 {
				t.Fatalf("empty: %d", code)
			}
		case err == nil:
			if !validCloseCode(code) || !utf8.Valid(p[2:]) {
				t.Fatalf("accepted % x as %d", p, code)
			}
		case !errors.As(err, &ce) || (ce.code != CloseProtocolError && ce.code != CloseInvalidData):
			t.Fatalf("% x: %v", p, err)
		}
	})
}
