package sse

import (
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// plain marks the bytes a JSON string holds unchanged in the SSE encoding: printable ASCII
// but the quote, the backslash and the colon.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != ':'
	}
	return t
}()

// AppendMessage appends one SSE message in the broker-client-safe encoding of HTTP.md:
// "event:NAME\ndata:JSON\nid:SEQ\n\n" (fields in that order, no space after the colon, LF),
// where JSON is re-encoded to pure ASCII (non-ASCII as \uXXXX, surrogate pairs above the BMP)
// with every ':' inside a JSON string as \u003a. An id of 0 writes no id: field (ephemeral
// message). retry, if > 0, adds "retry:N\n" after the id (milliseconds; the first message of
// a stream).
//
// json should be valid compact JSON (as encoding/json gives it); whatever it is, the data
// line stays one line of ASCII: whitespace and control bytes outside strings are dropped,
// control bytes inside strings are escaped, and invalid UTF-8 becomes \ufffd. CR and LF in the
// event name, which would end the field, are written as spaces.
func AppendMessage(dst []byte, event string, json []byte, id uint64, retry int) []byte {
	return appendMessage(dst, event, json, "", id, retry)
}

// appendMessage is AppendMessage with the id written as prefix followed by id (a cluster
// cursor "<epoch>.<seq>" when prefix is "<epoch>.").
func appendMessage(dst []byte, event string, json []byte, prefix string, id uint64, retry int) []byte {
	dst = append(dst, "event:"...)
	dst = appendField(dst, event)
	dst = append(dst, "\ndata:"...)
	dst = appendJSON(dst, json)
	dst = append(dst, '\n')
	if id != 0 {
		dst = append(dst, "id:"...)
		dst = append(dst, prefix...)
		dst = strconv.AppendUint(dst, id, 10)
		dst = append(dst, '\n')
	}
	if retry > 0 {
		dst = append(dst, "retry:"...)
		dst = strconv.AppendInt(dst, int64(retry), 10)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}

// AppendKeepAlive appends "event:keepalive\ndata:{}\n\n": a named event rather than a comment
// line, so that clients which ignore comments still see the connection alive.
func AppendKeepAlive(dst []byte) []byte {
	return append(dst, keepAlive...)
}

const keepAlive = "event:keepalive\ndata:{}\n\n"

func appendField(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\n' || c == '\r' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, ' ')
			start = i + 1
		}
	}
	return append(dst, s[start:]...)
}

// appendJSON appends json re-encoded for an SSE data line: pure ASCII, one line, every ':'
// inside a string as \u003a, the same JSON value otherwise (see AppendMessage).
func appendJSON(dst []byte, json []byte) []byte {
	inString := false
	start := 0 // json[start:i] is pending, to be copied unchanged
	for i := 0; i < len(json); {
		c := json[i]
		if !inString {
			switch {
			case c == '"':
				inString = true
				i++
			case c <= ' ': // whitespace (or garbage): not part of the value
				dst = append(dst, json[start:i]...)
				i++
				start = i
			case c >= utf8.RuneSelf:
				dst = append(dst, json[start:i]...)
				var size int
				dst, size = appendRune(dst, json[i:])
				i += size
				start = i
			default:
				i++
			}
			continue
		}
		if plain[c] { // the common case: a run of bytes copied as they are
			i++
			for i < len(json) && plain[json[i]] {
				i++
			}
			continue
		}
		switch {
		case c == '"':
			inString = false
			i++
		case c == '\\':
			// An escape is ASCII and keeps its meaning; skip the escaped byte so that \" does
			// not end the string. (\uXXXX digits are plain ASCII and copied as they come.)
			if i+1 < len(json) && json[i+1] >= ' ' && json[i+1] < utf8.RuneSelf {
				i += 2
			} else {
				i++
			}
		case c == ':':
			dst = append(dst, json[start:i]...)
			dst = append(dst, `\u003a`...)
			i++
			start = i
		case c < ' ':
			dst = append(dst, json[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
			start = i
		case c >= utf8.RuneSelf:
			dst = append(dst, json[start:i]...)
			var size int
			dst, size = appendRune(dst, json[i:])
			i += size
			start = i
		default:
			i++
		}
	}
	return append(dst, json[start:]...)
}

// appendRune writes the UTF-8 rune at the start of b as \uXXXX (a surrogate pair above the
// BMP; \ufffd for invalid UTF-8) and returns the bytes it consumed.
func appendRune(dst []byte, b []byte) ([]byte, int) {
	r, size := utf8.DecodeRune(b)
	if r > 0xffff {
		r -= 0x10000
		dst = appendU(dst, 0xd800+(r>>10))
		return appendU(dst, 0xdc00+(r&0x3ff)), size
	}
	return appendU(dst, r), size
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}
