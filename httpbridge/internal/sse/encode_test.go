package sse_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

func TestAppendMessageExactBytes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event string
		value any
		id    uint64
		retry int
		want  string
	}{
		{
			name:  "structural colons stay, non-ASCII BMP and astral escaped",
			event: "chat",
			value: map[string]any{"text": "héllo 世界 😀 🇫🇷"},
			id:    42,
			want: "event:chat\n" +
				`data:{"text":"h\u00e9llo \u4e16\u754c \ud83d\ude00 \ud83c\uddeb\ud83c\uddf7"}` + "\n" +
				"id:42\n\n",
		},
		{
			name:  "SSE field names and newlines inside strings",
			event: "x",
			value: map[string]any{"s": "a\nid:5\nretry:1\ndata:x\r\n\nevent:y"},
			id:    7,
			retry: 3000,
			want: "event:x\n" +
				`data:{"s":"a\nid\u003a5\nretry\u003a1\ndata\u003ax\r\n\nevent\u003ay"}` + "\n" +
				"id:7\nretry:3000\n\n",
		},
		{
			name:  "escaped quotes and backslashes before colons",
			event: "q",
			value: map[string]any{"s": `say "hi": \:\\:"`},
			id:    1,
			want: "event:q\n" +
				`data:{"s":"say \"hi\"\u003a \\\u003a\\\\\u003a\""}` + "\n" +
				"id:1\n\n",
		},
		{
			name:  "keys containing colons, nested values, no id for ephemeral",
			event: "e",
			value: map[string]any{"a:b": []any{1.5, "c:d", nil, true, map[string]any{"::": ":"}}},
			want: "event:e\n" +
				`data:{"a\u003ab":[1.5,"c\u003ad",null,true,{"\u003a\u003a":"\u003a"}]}` + "\n\n",
		},
		{
			name:  "HTML and line separators as encoding/json escapes them",
			event: "h",
			value: "<a>&\u2028",
			id:    3,
			want:  "event:h\n" + `data:"\u003ca\u003e\u0026\u2028"` + "\nid:3\n\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := json.Marshal(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			got := string(sse.AppendMessage(nil, tc.event, in, tc.id, tc.retry))
			if got != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
			checkDataLine(t, in, []byte(got))
		})
	}
}

func TestAppendMessageAppends(t *testing.T) {
	dst := []byte("prefix")
	got := string(sse.AppendMessage(dst, "a\nb\rc", []byte(`{}`), 0, 0))
	if want := "prefixevent:a b c\ndata:{}\n\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := string(sse.AppendKeepAlive([]byte("x"))); got != "xevent:keepalive\ndata:{}\n\n" {
		t.Fatalf("keep-alive %q", got)
	}
}

func TestAppendMessageAllocs(t *testing.T) {
	in, _ := json.Marshal(map[string]any{"text": "héllo: 😀", "n": 12})
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = sse.AppendMessage(buf[:0], "ev", in, 99, 3000) }); n != 0 {
		t.Fatalf("%v allocs per AppendMessage into a big enough buffer, want 0", n)
	}
}

// checkDataLine checks the properties every message has: one data line of pure ASCII with no
// ':' inside JSON strings, which decodes to the same value as in.
func checkDataLine(t *testing.T, in, msg []byte) {
	t.Helper()
	lines := strings.Split(string(msg), "\n")
	var data []string
	for _, l := range lines {
		if strings.HasPrefix(l, "data:") {
			data = append(data, strings.TrimPrefix(l, "data:"))
		}
	}
	if len(data) != 1 {
		t.Fatalf("%d data lines in %q", len(data), msg)
	}
	out := []byte(data[0])
	for i, c := range out {
		if c >= 0x80 {
			t.Fatalf("non-ASCII byte %#x at %d in %q", c, i, out)
		}
	}
	if bytes.ContainsAny(out, "\r\n") {
		t.Fatalf("newline in data line %q", out)
	}
	if s := colonInString(out); s >= 0 {
		t.Fatalf("raw ':' inside a string at %d in %q", s, out)
	}
	a, err := decode(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decode(out)
	if err != nil {
		t.Fatalf("output does not decode: %v: %q", err, out)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("value changed:\n in %s\nout %s", ja, jb)
	}
}

// decode keeps numbers as written, so any valid JSON (1e700 too) compares.
func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// colonInString scans JSON (independently of the encoder) and returns the offset of a ':'
// inside a string, or -1.
func colonInString(b []byte) int {
	in := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case !in:
			in = c == '"'
		case c == '\\':
			i++
		case c == '"':
			in = false
		case c == ':':
			return i
		}
	}
	return -1
}

func FuzzAppendMessage(f *testing.F) {
	for _, s := range []string{
		`{"a":"b"}`, `"x:y"`, `{"k:":"\":\\:"}`, `["héllo","😀",":"]`, `{"a\n:":"id:1\nretry:2"}`,
		`123`, `null`, `{"a":{"b":[1,2,{"c:d":"e:f"}]}}`, "{\"a\":\"\xff\xfe\"}", `"\ud83d\ude00:"`,
		` { "a" : "b:c" } `, "\"a\nb\"",
	} {
		f.Add([]byte(s), "ev", uint64(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, event string, id uint64) {
		msg := sse.AppendMessage(nil, event, in, id, 0)
		// Whatever the input: ASCII data, and the message is the four fields and one blank line.
		i := bytes.Index(msg, []byte("\ndata:"))
		if i < 0 {
			t.Fatalf("no data field in %q", msg)
		}
		if bytes.ContainsAny(msg[:i], "\r") || bytes.Count(msg, []byte("\n\n")) != 1 || !bytes.HasSuffix(msg, []byte("\n\n")) {
			t.Fatalf("framing broken: %q", msg)
		}
		rest := msg[i+len("\ndata:"):]
		data := rest[:bytes.IndexByte(rest, '\n')]
		for _, c := range data {
			if c >= 0x80 || c < ' ' {
				t.Fatalf("byte %#x in data line %q", c, data)
			}
		}
		if !json.Valid(in) {
			return
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, in); err != nil {
			t.Fatal(err)
		}
		checkDataLine(t, compact.Bytes(), sse.AppendMessage(nil, "e", compact.Bytes(), id, 0))
		checkDataLine(t, in, msg) // non-compact input (whitespace outside strings) works too
	})
}
