package rpc

import (
	"context"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtbus/rtbus/internal/mpcheck"
)

// Marshal encodes v as MessagePack, the conventional encoding of params and results
// (structs as maps keyed by field name or msgpack tag).
func Marshal(v any) ([]byte, error) { return msgpack.Marshal(v) }

// Unmarshal decodes MessagePack data into v. A failure is an *Error with CodeInvalidParams,
// so that a handler can return it as is:
//
//	var p struct{ Name string `msgpack:"name"` }
//	if err := rpc.Unmarshal(r.Params, &p); err != nil {
//		return nil, err
//	}
//
// The structure of data is checked first (declared lengths fit, nesting at most 100 deep),
// so that a peer cannot make the decoder allocate gigabytes with a few bytes. Where v has a
// map, the decoder reads an extension value there as the map its data begins with, so
// there an extension whose data begins like a map must hold exactly one well-formed value.
// A map type registered as an extension does; a timestamp whose bytes happen to begin like
// a map (about one in thirteen with nanoseconds) is refused where v's type might read it
// as one: as the top-level value when v is a map of values that hold no maps (such as
// map[string]any, whose values may be timestamps), anywhere when v holds maps deeper
// down (a struct with a map field, a map of maps).
func Unmarshal(data []byte, v any) (err error) {
	if !mpcheck.ValidIn(data, extScope(reflect.TypeOf(v))) {
		if mpcheck.Valid(data) {
			return Errorf(CodeInvalidParams, "MessagePack extension value whose data begins like a map, where %T may read it as one", v)
		}
		return Errorf(CodeInvalidParams, "malformed MessagePack")
	}
	// The decoder panics on some data it cannot store, such as an array as a key of a
	// map[any]any: that is the peer's error, not the handler's.
	defer func() {
		if r := recover(); r != nil {
			err = Errorf(CodeInvalidParams, "MessagePack does not fit %T: %v", v, r)
		}
	}()
	if err := msgpack.Unmarshal(data, v); err != nil {
		return Errorf(CodeInvalidParams, "%v", err)
	}
	return nil
}

// CallValue calls method on target with params encoded as MessagePack (nil params send
// none) and decodes the result into a T.
func CallValue[T any](ctx context.Context, c *Client, target, method string, params any) (T, error) {
	var out T
	var p []byte
	if params != nil {
		var err error
		if p, err = msgpack.Marshal(params); err != nil {
			return out, err
		}
	}
	res, err := c.Call(ctx, target, method, p)
	if err != nil {
		return out, err
	}
	if err := Unmarshal(res, &out); err != nil {
		return out, fmt.Errorf("rpc: %s %s: bad result: %w", target, method, err)
	}
	return out, nil
}
