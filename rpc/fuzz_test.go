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

// FuzzListFilter: whatever params a caller sends to .broker's client.list, they decode to a
// filter or to the coded error WIRE.md §9 asks for (-32602 bad params, -32700 bad regex),
// never to a panic or an uncoded error.
func FuzzListFilter(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x81, 0xa6, 'f', 'i', 'l', 't', 'e', 'r', 0xa3, 'a', '.', '*'})
	f.Add([]byte{0x81, 0xa6, 'f', 'i', 'l', 't', 'e', 'r', 0xa1, '('})
	f.Add([]byte{0x81, 0xa6, 'f', 'i', 'l', 't', 'e', 'r', 0x01})
	f.Add([]byte{0x81, 0x01, 0xa1, 'x'})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc0})
	f.Fuzz(func(t *testing.T, p []byte) {
		re, err := listFilter(p)
		if err == nil {
			return
		}
		if re != nil {
			t.Fatalf("% x: both a filter and %v", p, err)
		}
		e, ok := err.(*Error)
		if !ok || e.Code != CodeInvalidParams && e.Code != CodeParse {
			t.Fatalf("% x: error %#v, want an *Error coded %d or %d", p, err, CodeInvalidParams, CodeParse)
		}
	})
}
