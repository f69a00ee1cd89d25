package rpc_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtbus/rtbus/rpc"
)

// Extension values are read as maps only where the target has a map: a timestamp whose
// bytes begin like one decodes wherever the decoder reads it as a timestamp.
func TestUnmarshalExtensions(t *testing.T) {
	// 2038-01-19T03:14:08Z: four bytes of seconds, the first 0x80 (an empty map's header).
	when := time.Unix(1<<31, 0).UTC()
	ts, err := msgpack.Marshal(when)
	if err != nil || len(ts) != 6 || ts[2] != 0x80 {
		t.Fatalf("timestamp encodes as % x (%v)", ts, err)
	}
	inMap, _ := msgpack.Marshal(map[string]any{"at": when})

	var s struct {
		At time.Time `msgpack:"at"`
	}
	if err := rpc.Unmarshal(inMap, &s); err != nil || !s.At.Equal(when) {
		t.Errorf("into a struct: %v, %v", s.At, err)
	}
	var m map[string]any
	if err := rpc.Unmarshal(inMap, &m); err != nil || !m["at"].(time.Time).Equal(when) {
		t.Errorf("into map[string]any: %v, %v", m, err)
	}
	var tt time.Time
	if err := rpc.Unmarshal(ts, &tt); err != nil || !tt.Equal(when) {
		t.Errorf("alone: %v, %v", tt, err)
	}

	// Where a map is expected, the same bytes would be read as a map and then as whatever
	// follows: refused.
	wantInvalid := func(what string, err error) {
		t.Helper()
		var re *rpc.Error
		if !errors.As(err, &re) || re.Code != rpc.CodeInvalidParams {
			t.Errorf("%s: %v, want an *rpc.Error coded %d", what, err, rpc.CodeInvalidParams)
		}
	}
	err = rpc.Unmarshal(ts, &m)
	wantInvalid("timestamp into a map", err)
	if err == nil || !strings.Contains(err.Error(), "extension value whose data begins like a map, where *map[string]interface {} may read it") {
		t.Errorf("timestamp into a map: error %q does not say why", err)
	}
	var mm map[string]map[string]any
	wantInvalid("timestamp into a map of maps", rpc.Unmarshal(inMap, &mm))
	extArray := []byte("\xd8\xc4\x89\xa6f\xc2\xc2\xc2\xc2\xc2\xddter\xe3\x00.*")
	wantInvalid("array32 in extension data into a map", rpc.Unmarshal(extArray, &m))
	var ps struct {
		P map[string][]any `msgpack:"p"`
	}
	nested, _ := msgpack.Marshal(map[string]msgpack.RawMessage{"p": extArray})
	wantInvalid("array32 in extension data into a struct's map", rpc.Unmarshal(nested, &ps))

	// A map that is an extension's whole data decodes into a map.
	asExt := []byte{0xd6, 5, 0x81, 0xa1, 'k', 0x01}
	if err := rpc.Unmarshal(asExt, &m); err != nil || len(m) != 1 || m["k"] != int8(1) {
		t.Errorf("map held by an extension: %v, %v", m, err)
	}
}

// The decoder panics where a map[any]any gets an array as a key: Unmarshal answers an error.
func TestUnmarshalUnhashableKey(t *testing.T) {
	var m map[any]any
	err := rpc.Unmarshal([]byte{0x81, 0x91, 0x01, 0x02}, &m) // {[1]: 2}
	var re *rpc.Error
	if !errors.As(err, &re) || re.Code != rpc.CodeInvalidParams {
		t.Fatalf("array key: %v, want an *rpc.Error coded %d", err, rpc.CodeInvalidParams)
	}
}
