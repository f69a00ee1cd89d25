package rpc

import (
	"bytes"
	"testing"
)

// FuzzParse checks that any payload decodes without panicking, and that what decodes
// encodes back to the same bytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x00, 'h', 'i'})
	f.Add(appendRequest(nil, 1, "test", nil))
	f.Add(appendRequest(nil, 0, "m", []byte{0x81, 0xa2, 'o', 'k', 0xc3}))
	f.Add(appendReply(nil, 0xffffffff, []byte("r")))
	f.Add(appendError(nil, 3, -32113, []byte("d")))
	f.Add([]byte{0x01, 1, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, ok := parse(p)
		if !ok {
			return
		}
		var back []byte
		switch m.kind {
		case kindNotification:
			back = appendNotification(nil, m.data)
		case kindRequest:
			back = appendRequest(nil, m.id, string(m.method), m.data)
		case kindReply:
			back = appendReply(nil, m.id, m.data)
		case kindError:
			back = appendError(nil, m.id, m.code, m.data)
		default:
			t.Fatalf("parse accepted kind %#x", m.kind)
		}
		if !bytes.Equal(back, p) {
			t.Fatalf("% x parsed as %+v re-encodes as % x", p, m, back)
		}
	})
}
