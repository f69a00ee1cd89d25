package sse

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// closeError ends a WebSocket stream with a close frame of that code: the client broke the
// protocol or sent what a one-way stream does not take.
type closeError struct {
	code   int
	reason string
}

func (e *closeError) Error() string {
	return fmt.Sprintf("sse: websocket closed %d: %s", e.code, e.reason)
}

// ClientClosed: the WebSocket client sent a close frame (its code is echoed).
type clientClosed struct{ code int }

func (e *clientClosed) Error() string {
	return fmt.Sprintf("sse: websocket client closed (%d)", e.code)
}

const maxControl = 125

// readClientFrame reads one client frame (RFC 6455 §5.2). A control frame's payload (at most
// 125 bytes, unmasked into buf) is returned with its opcode; a data frame is answered as an
// error at its header, so that a client can make the server hold no more than one control
// frame whatever it sends.
func readClientFrame(r io.Reader, buf *[maxControl + 8]byte) (op byte, payload []byte, err error) {
	h := buf[:2]
	if _, err := io.ReadFull(r, h); err != nil {
		return 0, nil, err
	}
	fin, rsv, op := h[0]&0x80 != 0, h[0]&0x70, h[0]&0x0f
	masked, n := h[1]&0x80 != 0, int(h[1]&0x7f)
	switch {
	case rsv != 0:
		return 0, nil, &closeError{CloseProtocolError, "reserved bits set"}
	case !masked:
		return 0, nil, &closeError{CloseProtocolError, "client frame not masked"}
	case op == opText || op == opBinary || op == opContinuation:
		return 0, nil, &closeError{CloseUnsupported, "this stream takes no data frames"}
	case op != opClose && op != opPing && op != opPong:
		return 0, nil, &closeError{CloseProtocolError, "unknown opcode"}
	case !fin || n > maxControl:
		return 0, nil, &closeError{CloseProtocolError, "fragmented or oversized control frame"}
	}
	var mask [4]byte
	if _, err := io.ReadFull(r, mask[:]); err != nil {
		return 0, nil, err
	}
	p := buf[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	for i := range p {
		p[i] ^= mask[i&3]
	}
	return op, p, nil
}

// parseClose reads a client's close frame payload (RFC 6455 §5.5.1, §7.4): its code, 1005
// (no status) when it has none, or a closeError for a payload the client may not send (one
// byte, a code that is reserved or not in use, which gets 1002, or a reason that is not
// UTF-8, 1007).
func parseClose(p []byte) (code int, err error) {
	switch {
	case len(p) == 0:
		return 1005, nil
	case len(p) == 1:
		return 0, &closeError{CloseProtocolError, "close frame with a one-byte payload"}
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, &closeError{CloseProtocolError, fmt.Sprintf("invalid close code %d", code)}
	}
	if !utf8.Valid(p[2:]) {
		return 0, &closeError{CloseInvalidData, "close reason not UTF-8"}
	}
	return code, nil
}

// validCloseCode: a code a close frame may carry (RFC 6455 §7.4 and IANA's registry): 1004,
// 1005, 1006 and 1015 are reserved (never sent), other codes under 3000 are not assigned,
// 3000-4999 are for libraries and applications.
func validCloseCode(c int) bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	}
	return c >= 3000 && c <= 4999
}
