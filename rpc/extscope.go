package rpc

import (
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtbus/rtbus/internal/mpcheck"
)

// The msgpack decoder reads an extension value as the map its data begins with wherever it
// decodes into a map, so Unmarshal checks extension data as MessagePack exactly where the
// target type holds maps (see mpcheck.Scope): everywhere else, a timestamp whose bytes
// happen to begin like a map is just a timestamp.

var extScopes sync.Map // reflect.Type → mpcheck.Scope

var (
	customDecoder = reflect.TypeFor[msgpack.CustomDecoder]()
	unmarshaler   = reflect.TypeFor[msgpack.Unmarshaler]()
	rawMessage    = reflect.TypeFor[msgpack.RawMessage]()
)

// extScope returns where decoding into t, the type of Unmarshal's v, may read extensions as
// maps.
func extScope(t reflect.Type) mpcheck.Scope {
	if t == nil {
		return mpcheck.Opaque
	}
	if s, ok := extScopes.Load(t); ok {
		return s.(mpcheck.Scope)
	}
	e := t
	for e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	s := mpcheck.Opaque
	switch {
	case !holdsMap(e, map[reflect.Type]bool{}):
	case e.Kind() == reflect.Map && !decodesItself(e) &&
		!holdsMap(e.Key(), map[reflect.Type]bool{}) && !holdsMap(e.Elem(), map[reflect.Type]bool{}):
		s = mpcheck.Top
	default:
		s = mpcheck.Anywhere
	}
	extScopes.Store(t, s)
	return s
}

// holdsMap reports whether decoding into t may decode into a map: t is one, or holds one
// in its elements or fields, or decodes itself (which may). Interfaces do not count: the
// decoder fills an empty one from the data's own types, and decodes an extension there
// only as a registered extension type.
func holdsMap(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == rawMessage {
		return false
	}
	if decodesItself(t) {
		return true
	}
	if seen[t] { // a recursive type: its maps, if any, are found where it began
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Map:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holdsMap(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsMap(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// decodesItself reports whether the decoder hands t's data to t's own method (through *t:
// its method set holds t's too).
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(customDecoder) || p.Implements(unmarshaler)
}
