package sse

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// ErrHandshake: ServeWS was given a request that is not a WebSocket handshake it accepts
// (nothing was written; answer it with a 4xx).
var ErrHandshake = errors.New("sse: not a WebSocket handshake")

// ServeWS accepts the WebSocket handshake of r (RFC 6455 §4.2, version 13, no extension, no
// subprotocol) and serves the stream over it, detached as StreamOptions.Detach describes:
// each message one text frame {"id","event","data"} (no "id" for ephemeral ones), a ping
// every KeepAlive on an idle stream, the stream closed when a ping stays unanswered for two
// KeepAlives, when the client sends a data frame (1003) or a close frame (echoed). On a
// plain TCP or UNIX connection the hub reads the client's control frames at each keep-alive
// tick, without waiting, so that an idle WebSocket holds no goroutine, as an idle detached
// SSE stream; elsewhere (TLS) one small goroutine reads them.
//
// It returns an error wrapping ErrHandshake, having written nothing, for a request that is
// not a valid handshake (one over HTTP/2 included) or whose connection cannot be taken over;
// otherwise what Serve returns with Detach. A close frame from the client with a code it may
// not send (1005, 1006, 1015, unassigned ones) or a one-byte payload is answered with 1002,
// a close reason that is not UTF-8 with 1007.
//
// The frames are written here rather than with a WebSocket library so that a publication is
// framed once and the same bytes go to every stream (several at once in one writev), and an
// idle stream holds no buffer.
func (h *Hub) ServeWS(ctx context.Context, w http.ResponseWriter, r *http.Request, opts StreamOptions) error {
	accept, err := checkHandshake(r)
	if err != nil {
		return err
	}
	s := h.newStream(tWS, opts)
	hd := http.Header{}
	hd.Set("Upgrade", "websocket")
	hd.Set("Connection", "Upgrade")
	hd.Set("Sec-WebSocket-Accept", accept)
	conn, err := hijack(http.NewResponseController(w))
	if err != nil { // nothing was written: the caller answers
		return fmt.Errorf("%w: the connection cannot be taken over: %v", ErrHandshake, err)
	}
	s.pongAt.Store(h.now().UnixNano())
	polled := s.pollable(conn) // before the keep-alive loop sees the stream
	if err := h.serveDetached(ctx, s, conn, "101 Switching Protocols", hd, opts); err != nil {
		return err
	}
	if !polled {
		go s.readLoop(conn)
	}
	return nil
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func checkHandshake(r *http.Request) (accept string, err error) {
	key := r.Header.Get("Sec-WebSocket-Key")
	switch {
	case r.ProtoMajor != 1:
		// RFC 6455's handshake is an HTTP/1.1 upgrade; Go's HTTP/2 server does not offer
		// RFC 8441's extended CONNECT (browsers then open an HTTP/1.1 connection for it).
		return "", fmt.Errorf("%w: WebSocket needs HTTP/1.1, this request came over HTTP/%d", ErrHandshake, r.ProtoMajor)
	case r.Method != http.MethodGet:
		return "", fmt.Errorf("%w: method %s", ErrHandshake, r.Method)
	case !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket"):
		return "", fmt.Errorf("%w: want Connection: Upgrade and Upgrade: websocket", ErrHandshake)
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return "", fmt.Errorf("%w: want Sec-WebSocket-Version: 13", ErrHandshake)
	}
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", fmt.Errorf("%w: bad Sec-WebSocket-Key", ErrHandshake)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// headerHas reports whether a comma-separated header lists token (case-insensitive).
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// readLoop reads the client's frames until the connection ends (a connection the hub
// cannot read without waiting: TLS).
func (s *stream) readLoop(conn net.Conn) {
	var buf [maxControl + 8]byte
	for {
		op, p, err := readClientFrame(conn, &buf)
		if err != nil {
			s.fail(err)
			return
		}
		if s.handleFrame(op, p) {
			return
		}
	}
}

// handleFrame acts on a client's control frame, and reports whether the stream ends: every
// frame counts as a sign of life, a ping is answered, a close is echoed.
func (s *stream) handleFrame(op byte, p []byte) (end bool) {
	s.pongAt.Store(s.hub.now().UnixNano())
	switch op {
	case opPing:
		pong := appendWSFrame(nil, opPong, func(b []byte) []byte { return append(b, p...) })
		s.push(&item{raw: pong}, s.hub.queueSize)
	case opClose:
		code, err := parseClose(p)
		if err != nil {
			s.fail(err) // answered with its own code
			return true
		}
		s.fail(&clientClosed{code})
		return true
	}
	return false
}
