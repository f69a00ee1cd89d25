package main

import (
	"encoding/json"
	"testing"
)

func TestShowPayload(t *testing.T) {
	for _, c := range []struct {
		in, format, want string
	}{
		{"hello", "auto", "hello"},
		{"hi\n", "auto", `"hi\n"`},
		{"a\r\nb\tc", "auto", `"a\r\nb\tc"`},
		{"a\tb", "auto", "a\tb"},
		{"hi\n", "text", "hi\n"},
		{"\x82\xa1a\x01\xa1b\x92\xc3\xc0", "auto", `{"a": 1, "b": [true, null]}`},
		{"\x01\x02", "auto", "0102"},
		{"hi", "hex", "6869"},
		{"\xc4\x02\xab\xcd", "msgpack", `"abcd"`},
		{"\x2a", "result", "42"},
		{"\xc1", "msgpack", "(not MessagePack) c1"},
	} {
		if got := showPayload([]byte(c.in), c.format); got != c.want {
			t.Errorf("showPayload(%q, %s) = %q, want %q", c.in, c.format, got, c.want)
		}
	}
}

func TestTypedValue(t *testing.T) {
	for in, want := range map[string]any{
		"true": true, "false": false, "-3": int64(-3), "18446744073709551615": uint64(18446744073709551615),
		"2.5": 2.5, "abc": "abc", `"7"`: "7", "": "", "NaN": "NaN", "0x10": "0x10",
	} {
		if got := typedValue(in); got != want {
			t.Errorf("typedValue(%q) = %#v, want %#v", in, got, want)
		}
	}
}

// FuzzMsgpackJSON: whatever a peer sends, rendering it must not panic, and what it renders
// as JSON must be valid JSON.
func FuzzMsgpackJSON(f *testing.F) {
	f.Add([]byte{0x81, 0xa2, 'o', 'k', 0xc3})
	f.Add([]byte{0x92, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xd6, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0xde, 0, 1, 0x01, 0xc4, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		s, ok := msgpackJSON(p)
		if ok && !json.Valid([]byte(s)) {
			t.Fatalf("% x rendered as invalid JSON %q", p, s)
		}
		showPayload(p, "auto")
	})
}
