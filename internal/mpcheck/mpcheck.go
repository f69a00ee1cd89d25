// Package mpcheck checks the structure of MessagePack data from peers before a decoder sees
// it: every declared length must fit in the bytes that follow, and nesting is bounded. A
// general-purpose decoder trusts declared lengths (an array header may announce four billion
// elements in five bytes) and recurses into nesting, so unchecked input can exhaust memory
// or the stack.
//
// Extension values are opaque to MessagePack, but github.com/vmihailenco/msgpack/v5 reads
// one as the map its data begins with wherever it expects a map (that is how it decodes a
// type registered as an extension into a map). Data read that way escapes a check that
// treats it as opaque, so callers that decode into maps say so with a [Scope].
package mpcheck

import "encoding/binary"

// MaxDepth is the deepest nesting of arrays and maps accepted.
const MaxDepth = 100

// Scope says where the decoder that follows may read an extension value as a map.
type Scope int

const (
	// Opaque: nowhere; extension data is never read as MessagePack (decoding into
	// interfaces, structs without maps, or a decoder of one's own).
	Opaque Scope = iota
	// Top: the top-level value only (decoding into a map whose keys and values hold no maps).
	Top
	// Anywhere: any value.
	Anywhere
)

// Value reports whether p begins with one well-formed MessagePack value and returns its
// length. Extension data is not checked (Scope Opaque).
func Value(p []byte) (int, bool) {
	return value(p, Opaque, MaxDepth)
}

// Valid reports whether p is exactly one well-formed MessagePack value, extension data
// unchecked (Scope Opaque).
func Valid(p []byte) bool {
	n, ok := Value(p)
	return ok && n == len(p)
}

// ValidIn reports whether p is exactly one well-formed MessagePack value for a decoder that
// may read extension values within scope as maps: there, an extension whose data begins
// with a map or nil header must hold exactly one well-formed value, which is what such a
// decoder reads. (An extension whose data merely happens to begin with such a byte, such as
// one timestamp in thirteen, is refused where the decoder might misread it.)
func ValidIn(p []byte, scope Scope) bool {
	n, ok := value(p, scope, MaxDepth)
	return ok && n == len(p)
}

// value is Value for a decoder that reads extensions as maps within scope, nesting at most
// maxDepth deep.
func value(p []byte, scope Scope, maxDepth int) (int, bool) {
	var pending [MaxDepth + 1]int // elements left in each open container; [0] is the top level
	depth := 0
	pending[0] = 1
	i := 0
	for {
		if pending[depth] == 0 {
			if depth == 0 {
				return i, true
			}
			depth--
			continue
		}
		pending[depth]--
		size, children, ok := head(p[i:])
		if !ok || size > len(p)-i {
			return 0, false
		}
		if scope == Anywhere || scope == Top && depth == 0 {
			if data, ok := mapLike(p[i : i+size]); ok {
				// Read as a map, the data must end where the extension does; what it holds
				// is typed by the map's values, so Top does not reach into it.
				inner := scope
				if scope == Top {
					inner = Opaque
				}
				if n, ok := value(data, inner, maxDepth-depth); !ok || n != len(data) {
					return 0, false
				}
			}
		}
		i += size
		if children > 0 {
			// Each element takes at least one byte: more than remain cannot be there.
			if children > len(p)-i || depth == maxDepth {
				return 0, false
			}
			depth++
			pending[depth] = children
		}
	}
}

// mapLike returns the data of the extension value v when a decoder expecting a map would
// read it: data that begins with a map header, or nil (a nil map), or no data.
func mapLike(v []byte) ([]byte, bool) {
	var off int
	switch v[0] {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: type, data
		off = 2
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, type, data
		off = 2 + 1<<(v[0]-0xc7)
	default:
		return nil, false
	}
	// Without data the decoder would read the next value as this one: refused (the empty
	// data is not one value).
	if off >= len(v) {
		return v[off:], true
	}
	switch c := v[off]; {
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf, c == 0xc0:
		return v[off:], true
	}
	return nil, false
}

// head decodes the header at the start of p: size is the header plus any inline data
// (numbers, strings, binary, extensions); children the elements of an array or map.
func head(p []byte) (size, children int, ok bool) {
	if len(p) == 0 {
		return 0, 0, false
	}
	c := p[0]
	switch {
	case c <= 0x7f || c >= 0xe0: // fixint
		return 1, 0, true
	case c <= 0x8f: // fixmap
		return 1, 2 * int(c&0x0f), true
	case c <= 0x9f: // fixarray
		return 1, int(c & 0x0f), true
	case c <= 0xbf: // fixstr
		return 1 + int(c&0x1f), 0, true
	}
	length := func(n int) (int, bool) {
		if len(p) < 1+n {
			return 0, false
		}
		switch n {
		case 1:
			return int(p[1]), true
		case 2:
			return int(binary.BigEndian.Uint16(p[1:])), true
		}
		return int(binary.BigEndian.Uint32(p[1:])), true
	}
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return 1, 0, true
	case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb: // bin 8/16/32, str 8/16/32
		w := 1 << ((c - 0xc4) % 3)
		if c >= 0xd9 {
			w = 1 << (c - 0xd9)
		}
		n, ok := length(w)
		return 1 + w + n, 0, ok
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, type, data
		w := 1 << (c - 0xc7)
		n, ok := length(w)
		return 1 + w + 1 + n, 0, ok
	case 0xca, 0xcb: // float 32/64
		return 1 + 4<<(c-0xca), 0, true
	case 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3: // uint, int 8..64
		return 1 + 1<<((c-0xcc)%4), 0, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16: type, data
		return 2 + 1<<(c-0xd4), 0, true
	case 0xdc, 0xdd: // array 16/32
		w := 2 << (c - 0xdc)
		n, ok := length(w)
		return 1 + w, n, ok
	case 0xde, 0xdf: // map 16/32
		w := 2 << (c - 0xde)
		n, ok := length(w)
		return 1 + w, 2 * n, ok
	}
	return 0, 0, false // 0xc1, never used
}
