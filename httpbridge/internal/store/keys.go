package store

import (
	"encoding/binary"
	"errors"
)

// Key prefixes: one byte per keyspace, so the keyspaces never interleave. See doc.go for
// the whole layout.
const (
	pUserByName = 'n' // n STR(username)                        → user JSON
	pUserByID   = 'u' // u STR(id)                              → username
	pEvent      = 'e' // e STR(tenant) STR(id)                  → event value
	pCollection = 'c' // c STR(tenant) STR(collection) TS ORDER → id
	pByUser     = 'w' // w STR(tenant) STR(user id) TS ORDER    → id
	pPublished  = 'p' // p STR(tenant) SEQ                      → id
	pState      = 's' // s STR(tenant) STR(name) STR(coll)      → TS ORDER id
	pDue        = 'd' // d TS ORDER                             → STR(tenant) STR(id)
	pMeta       = 'm' // m "order"                              → last ORDER
	pBlacklist  = 'b' // b STR(session id)                      → TS (expiry)
	pTenantSet  = 't' // t STR(tenant)                          → tenant settings JSON
)

var metaOrderKey = []byte{pMeta, 'o', 'r', 'd', 'e', 'r'}

var errBadKey = errors.New("store: malformed stored key or value")

// appendStr appends s so that no encoded string is a prefix of another and the encoding
// sorts like the strings: 0x00 is escaped as 0x00 0xFF and the string ends with 0x00 0x01.
// Thus the prefix of tenant "a" (61 00 01) never matches tenant "ab" (61 62 00 01) nor
// "a\x00" (61 00 FF 00 01).
func appendStr[S string | []byte](dst []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			dst = append(dst, 0, 0xFF)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, 0, 1)
}

// readStr decodes one appendStr string from the front of b and returns it and the rest.
func readStr(b []byte) (s string, rest []byte, err error) {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		if i+1 >= len(b) {
			return "", nil, errBadKey
		}
		switch b[i+1] {
		case 1:
			if out == nil {
				return string(b[:i]), b[i+2:], nil
			}
			return string(append(out, b[:i]...)), b[i+2:], nil
		case 0xFF:
			out = append(out, b[:i]...)
			out = append(out, 0)
			b = b[i+2:]
			i = -1
		default:
			return "", nil, errBadKey
		}
	}
	return "", nil, errBadKey
}

// appendTS appends a Unix timestamp so that the byte order is the numeric order, negative
// values included (sign bit flipped, big endian).
func appendTS(dst []byte, ts int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(ts)^(1<<63))
}

func readTS(b []byte) (int64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, errBadKey
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), b[8:], nil
}

func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

func readU64(b []byte) (uint64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, errBadKey
	}
	return binary.BigEndian.Uint64(b), b[8:], nil
}

// The key builders append to dst (nil for a new key), so that the write path can build its
// keys in reused buffers: a pebble batch copies what it is given.

func key1(p byte, a string) []byte { return appendStr([]byte{p}, a) }

func key2(p byte, a, b string) []byte { return appendStr(appendStr([]byte{p}, a), b) }

func eventKey(dst []byte, tenant, id string) []byte {
	return appendStr(appendStr(append(dst, pEvent), tenant), id)
}

func collKey(dst []byte, tenant, coll string, ts int64, order uint64) []byte {
	return appendU64(appendTS(appendStr(appendStr(append(dst, pCollection), tenant), coll), ts), order)
}

func byUserKey(dst []byte, tenant, user string, ts int64, order uint64) []byte {
	return appendU64(appendTS(appendStr(appendStr(append(dst, pByUser), tenant), user), ts), order)
}

func pubKey(dst []byte, tenant string, seq uint64) []byte {
	return appendU64(appendStr(append(dst, pPublished), tenant), seq)
}

func stateKey(dst []byte, tenant, name, coll string) []byte {
	return appendStr(appendStr(appendStr(append(dst, pState), tenant), name), coll)
}

func dueKey(dst []byte, ts int64, order uint64) []byte {
	return appendU64(appendTS(append(dst, pDue), ts), order)
}

// stateVal is the value of a state index entry: which event is the latest of its
// (name, collection), with what it is compared by.
func stateVal(dst []byte, ts int64, order uint64, id string) []byte {
	return append(appendU64(appendTS(dst, ts), order), id...)
}

func readStateVal(b []byte) (ts int64, order uint64, id string, err error) {
	if ts, b, err = readTS(b); err != nil {
		return 0, 0, "", err
	}
	if order, b, err = readU64(b); err != nil {
		return 0, 0, "", err
	}
	return ts, order, string(b), nil
}

func dueVal(dst []byte, tenant, id string) []byte { return appendStr(appendStr(dst, tenant), id) }

func readDueVal(b []byte) (tenant, id string, err error) {
	if tenant, b, err = readStr(b); err != nil {
		return "", "", err
	}
	if id, b, err = readStr(b); err != nil {
		return "", "", err
	}
	if len(b) != 0 {
		return "", "", errBadKey
	}
	return tenant, id, nil
}

// readDueKey decodes a due index key (prefix included).
func readDueKey(k []byte) (ts int64, order uint64, err error) {
	if len(k) != 17 || k[0] != pDue {
		return 0, 0, errBadKey
	}
	ts, k, _ = readTS(k[1:])
	order, _, _ = readU64(k)
	return ts, order, nil
}

// readSeqKey decodes the Seq at the end of a publication index key.
func readSeqKey(k []byte) (uint64, error) {
	if len(k) < 9 {
		return 0, errBadKey
	}
	return binary.BigEndian.Uint64(k[len(k)-8:]), nil
}

// prefixEnd is the first key after every key that starts with p (p never ends in 0xFF here
// except for escaped zero bytes, which the loop handles).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xFF: no upper bound
}
