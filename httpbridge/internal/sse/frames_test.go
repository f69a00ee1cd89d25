package sse

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// masked builds a client frame.
func masked(fin bool, op byte, payload []byte) []byte {
	b := []byte{op, 0x80}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b[1] |= byte(n)
	case n <= 0xffff:
		b[1] |= 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] |= 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := []byte{1, 2, 3, 4}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i&3])
	}
	return b
}

func TestReadClientFrame(t *testing.T) {
	var buf [maxControl + 8]byte
	for _, c := range []struct {
		name string
		in   []byte
		op   byte
		p    string
		code int // closeError code; 0: none
	}{
		{"pong", masked(true, opPong, []byte("hi")), opPong, "hi", 0},
		{"ping", masked(true, opPing, nil), opPing, "", 0},
		{"close", masked(true, opClose, []byte{0x03, 0xe8, 'o', 'k'}), opClose, "\x03\xe8ok", 0},
		{"text", masked(true, opText, []byte("hello")), 0, "", CloseUnsupported},
		{"binary", masked(true, opBinary, []byte{1}), 0, "", CloseUnsupported},
		{"continuation", masked(false, opContinuation, nil), 0, "", CloseUnsupported},
		{"unmasked", []byte{0x89, 0}, 0, "", CloseProtocolError},
		{"rsv", []byte{0xc9, 0x80, 0, 0, 0, 0}, 0, "", CloseProtocolError},
		{"fragmented ping", masked(false, opPing, nil), 0, "", CloseProtocolError},
		{"big ping", masked(true, opPing, make([]byte, 126)), 0, "", CloseProtocolError},
		{"opcode 3", masked(true, 3, nil), 0, "", CloseProtocolError},
	} {
		op, p, err := readClientFrame(bytes.NewReader(c.in), &buf)
		var ce *closeError
		switch {
		case c.code != 0:
			if !errors.As(err, &ce) || ce.code != c.code {
				t.Errorf("%s: %v, want close %d", c.name, err, c.code)
			}
		case err != nil || op != c.op || string(p) != c.p:
			t.Errorf("%s: %d %q %v", c.name, op, p, err)
		}
	}
	if _, _, err := readClientFrame(bytes.NewReader(masked(true, opPong, []byte("abc"))[:5]), &buf); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut frame: %v", err)
	}
	for _, c := range []struct {
		p    string
		code int // 0: refused
		err  int // the refusal's close code
	}{
		{"", 1005, 0}, {"\x0f\xa1", 4001, 0}, {"\x03\xe8bye", 1000, 0}, {"\x03\xf3", 1011, 0},
		{"\x03\xf6", 1014, 0}, {"\x0b\xb8", 3000, 0}, {"\x13\x87", 4999, 0},
		{"\x03", 0, CloseProtocolError}, {"\x03\xed", 0, CloseProtocolError}, // 1005
		{"\x03\xee", 0, CloseProtocolError}, {"\x03\xec", 0, CloseProtocolError}, // 1006, 1004
		{"\x03\xf7", 0, CloseProtocolError}, {"\x03\xe7", 0, CloseProtocolError}, // 1015, 999
		{"\x00\x00", 0, CloseProtocolError}, {"\x07\xd0", 0, CloseProtocolError}, // 0, 2000
		{"\x13\x88", 0, CloseProtocolError}, {"\xff\xff", 0, CloseProtocolError}, // 5000, 65535
		{"\x03\xe8\xff", 0, CloseInvalidData},
	} {
		code, err := parseClose([]byte(c.p))
		var ce *closeError
		switch {
		case c.code != 0 && (err != nil || code != c.code):
			t.Errorf("close % x: %d %v, want %d", c.p, code, err, c.code)
		case c.code == 0 && (!errors.As(err, &ce) || ce.code != c.err):
			t.Errorf("close % x: %d %v, want refused with %d", c.p, code, err, c.err)
		}
	}
}

func TestWSFrameSizes(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'x'}, n)
		f := appendWSFrame([]byte("prefix"), opText, func(b []byte) []byte { return append(b, payload...) })
		if !bytes.HasPrefix(f, []byte("prefix")) {
			t.Fatalf("%d: prefix lost", n)
		}
		f = f[len("prefix"):]
		if f[0] != 0x81 {
			t.Fatalf("%d: first byte %#x", n, f[0])
		}
		var hl, got int
		switch l := int(f[1]); {
		case l < 126:
			hl, got = 2, l
		case l == 126:
			hl, got = 4, int(binary.BigEndian.Uint16(f[2:]))
		default:
			hl, got = 10, int(binary.BigEndian.Uint64(f[2:]))
		}
		if got != n || len(f) != hl+n || !bytes.Equal(f[hl:], payload) {
			t.Fatalf("%d: header says %d, frame %d bytes", n, got, len(f))
		}
	}
	c := appendWSClose(nil, CloseSessionKilled, strings.Repeat("r", 200))
	if len(c) != 2+125 || c[0] != 0x88 || binary.BigEndian.Uint16(c[2:]) != 4001 {
		t.Fatalf("close frame % x", c[:4])
	}
}

func TestAppendJSONMessage(t *testing.T) {
	for _, c := range []struct {
		event string
		data  string
		seq   uint64
		want  string
	}{
		{"temp", `{"a":1}`, 7, `{"id":"7","event":"temp","data":{"a":1}}`},
		{"hello", `"x: y"`, 0, `{"event":"hello","data":"x: y"}`},
		{"q\"\\\n\x01é", "", 1, `{"id":"1","event":"q\"\\\u000a\u0001é","data":null}`},
		{"bad\xff", "\"\xfe\"", 2, `{"id":"2","event":"bad\ufffd","data":"` + "\uFFFD" + `"}`},
	} {
		if got := string(AppendJSONMessage(nil, c.event, []byte(c.data), c.seq)); got != c.want {
			t.Errorf("%q: %s, want %s", c.event, got, c.want)
		}
	}
}

// FuzzReadClientFrame: whatever a client sends, a frame read holds at most a control
// frame's 125 bytes, and a data frame ends the stream at its header.
func FuzzReadClientFrame(f *testing.F) {
	f.Add(masked(true, opPong, []byte("hi")))
	f.Add(masked(true, opClose, []byte{0x03, 0xe8}))
	f.Add(masked(true, opText, []byte("data")))
	f.Add([]byte{0x89, 0xfe, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		var buf [maxControl + 8]byte
		r := bytes.NewReader(in)
		for {
			op, p, err := readClientFrame(r, &buf)
			if err != nil {
				return
			}
			if len(p) > maxControl || (op != opPing && op != opPong && op != opClose) {
				t.Fatalf("op %d payload %d bytes", op, len(p))
			}
		}
	})
}

// FuzzAppendJSONMessage: the object is valid UTF-8 (a WebSocket text frame) and valid JSON
// holding the event name and the data whenever the data is valid JSON.
func FuzzAppendJSONMessage(f *testing.F) {
	f.Add("temp", []byte(`{"a":"é: x"}`), uint64(3))
	f.Add("a\"b\n", []byte(`null`), uint64(0))
	f.Add("\xff", []byte("\"\xff\""), uint64(1))
	f.Fuzz(func(t *testing.T, event string, data []byte, seq uint64) {
		out := AppendJSONMessage(nil, event, data, seq)
		if !utf8.Valid(out) {
			t.Fatalf("not UTF-8: %q", out)
		}
		if !json.Valid(data) && len(data) != 0 {
			return
		}
		var m struct {
			ID    *string
			Event string
			Data  json.RawMessage
		}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		if (utf8.ValidString(event) && m.Event != event) || (m.ID != nil) != (seq != 0) {
			t.Fatalf("%q read back as %+v", out, m)
		}
	})
}
