package mpcheck

import (
	"bytes"
	"encoding/binary"
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

// FuzzValue: the check never panics, and whatever it accepts the decoder decodes within
// bounded memory, into the types each scope stands for. (A worker that runs out of memory
// fails the fuzzing run.)
func FuzzValue(f *testing.F) {
	f.Add([]byte{0x81, 0xa2, 'o', 'k', 0xc3})
	f.Add([]byte{0xde, 0xdd, 0xdd, 0xdd, 0xdd})
	f.Add([]byte{0xd6, 0xff, 0, 0, 0, 0})
	f.Add([]byte("\xd8\xc4\x89\xa6f\xc2\xc2\xc2\xc2\xc2\xddter\xe3\x00.*"))
	f.Add([]byte{0x81, 0xa1, 'k', 0xd6, 5, 0x81, 0xa1, 'k', 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		// Extension types and timestamps the decoder does not know, and data of the wrong
		// type, are errors of its own; what matters is that it returns.
		if Valid(p) {
			var v any
			_ = msgpack.Unmarshal(p, &v)
			var s struct {
				K any      `msgpack:"k"`
				L []any    `msgpack:"l"`
				S []string `msgpack:"s"`
			}
			_ = msgpack.Unmarshal(p, &s)
		}
		if ValidIn(p, Top) {
			var m map[string]any
			_ = msgpack.Unmarshal(p, &m)
			var ms map[string]string
			_ = msgpack.Unmarshal(p, &ms)
		}
		if ValidIn(p, Anywhere) {
			var mm map[string]map[string]any
			_ = msgpack.Unmarshal(p, &mm)
			var sm []map[string]any
			_ = msgpack.Unmarshal(p, &sm)
			var s struct {
				M map[string]any   `msgpack:"m"`
				L []map[string]int `msgpack:"l"`
				K map[string][]any `msgpack:"k"`
			}
			_ = msgpack.Unmarshal(p, &s)
		}
	})
}

// A decoder that expects a map reads an extension as the map its data begins with: within
// its scope, such data must be exactly one well-formed value.
func TestValidIn(t *testing.T) {
	crash := []byte("\xd8\xc4\x89\xa6f\xc2\xc2\xc2\xc2\xc2\xddter\xe3\x00.*") // fixext16 holding an array32 of 2e9
	ts := []byte{0xd6, 0xff, 0x80, 1, 2, 3}                                   // a timestamp of 2038 that begins like an empty map
	exactMap := []byte{0xd6, 5, 0x81, 0xa1, 'k', 0x01}                        // ext 5 holding {"k": 1}
	nilData := []byte{0xd4, 5, 0xc0}
	empty := []byte{0xc7, 0, 5}
	deep := append([]byte{0xc9, 0, 0, 0, 0, 5}, append(bytes.Repeat([]byte{0x81, 0x01}, MaxDepth), 0)...)
	binary.BigEndian.PutUint32(deep[1:], uint32(len(deep)-6))
	in := func(v []byte) []byte { return append([]byte{0x91}, v...) } // one level down
	for _, c := range []struct {
		name string
		p    []byte
		want [3]bool // Opaque, Top, Anywhere
	}{
		{"array32 in ext data", crash, [3]bool{true, false, false}},
		{"array32 in ext data, nested", in(crash), [3]bool{true, true, false}},
		{"timestamp beginning like a map", ts, [3]bool{true, false, false}},
		{"timestamp beginning like a map, nested", in(ts), [3]bool{true, true, false}},
		{"ext holding one map", exactMap, [3]bool{true, true, true}},
		{"ext holding one map, nested", in(exactMap), [3]bool{true, true, true}},
		{"ext holding nil", nilData, [3]bool{true, true, true}},
		{"ext without data", empty, [3]bool{true, false, false}},
		{"ext holding nesting at MaxDepth", deep, [3]bool{true, true, true}},
		{"ext holding nesting past MaxDepth, nested", in(deep), [3]bool{true, true, false}},
		{"plain timestamp", []byte{0xd6, 0xff, 0x6b, 1, 2, 3}, [3]bool{true, true, true}},
	} {
		for s, want := range c.want {
			if got := ValidIn(c.p, Scope(s)); got != want {
				t.Errorf("%s, scope %d: valid %v, want %v", c.name, s, got, want)
			}
		}
		if Valid(c.p) != c.want[Opaque] {
			t.Errorf("%s: Valid differs from ValidIn(Opaque)", c.name)
		}
	}
}
