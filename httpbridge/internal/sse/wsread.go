package sse

import (
	"encoding/binary"
	"fmt"
	"io"
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

// closeCode returns the code of a close frame's payload (1005, no status, when it has none).
func closeCode(p []byte) int {
	if len(p) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(p))
}
