package httpbridge

import (
	"bytes"
	"encoding/json"
	"net/http"
	"unicode/utf8"
)

// checkText refuses a request body holding text that is not text: bytes that are not UTF-8,
// or a \u escape of half a surrogate pair. encoding/json would turn either into U+FFFD, so
// that different byte strings became the same username or tenant, while json.RawMessage
// fields (data) would keep the raw bytes and be served as invalid JSON. The error names the
// top-level field that holds the bad text.
func checkText(body []byte) error {
	if utf8.Valid(body) && !bytes.Contains(body, []byte(`\u`)) {
		return nil // the common case: nothing to look for
	}
	depth := 0
	field := ""
	wantKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '{':
			depth++
			wantKey = depth == 1
		case c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ',':
			wantKey = depth == 1
		case c == '"':
			end, ok := scanString(body, i+1)
			isKey := depth == 1 && wantKey
			if !ok {
				if isKey {
					return errorf(http.StatusBadRequest, "a field name is not valid UTF-8 text")
				}
				return badText(field)
			}
			if isKey {
				field, wantKey = fieldName(body[i:min(end+1, len(body))]), false
			}
			i = end
		case c >= utf8.RuneSelf: // outside a string: bad JSON, but say what is wrong first
			r, n := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && n <= 1 {
				return badText(field)
			}
			i += n - 1
		}
	}
	return nil
}

func badText(field string) error {
	if field == "" {
		return errorf(http.StatusBadRequest, "request body is not valid UTF-8 text")
	}
	return errorf(http.StatusBadRequest, "field %q is not valid UTF-8 text", field)
}

// fieldName is the decoded name of a key, shortened for an error message.
func fieldName(quoted []byte) string {
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		s = string(quoted)
	}
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "…"
	}
	return s
}

// scanString scans the JSON string whose content starts at b[i], and returns the index of
// its closing quote (len(b) if there is none) and whether its content is valid text.
func scanString(b []byte, i int) (end int, ok bool) {
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i, true
		case c == '\\':
			if i+1 < len(b) && b[i+1] == 'u' {
				r, n := escapedRune(b[i:])
				if r < 0 {
					return i, false
				}
				i += n
				continue
			}
			if i+1 < len(b) && b[i+1] >= utf8.RuneSelf {
				i++ // not an escape JSON knows, and the byte after it must still be UTF-8
				continue
			}
			i += 2
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return i, false
			}
			i += n
		}
	}
	return len(b), true
}

// escapedRune decodes the \uXXXX escape (or surrogate pair of two) at the start of b: the
// rune and the bytes it takes; -1 for half a pair. A malformed escape is left to the JSON
// decoder (rune 0).
func escapedRune(b []byte) (rune, int) {
	r1, ok := hex4(b)
	if !ok {
		return 0, 2
	}
	switch {
	case r1 >= 0xDC00 && r1 <= 0xDFFF:
		return -1, 6 // a low half with no high half before it
	case r1 >= 0xD800 && r1 <= 0xDBFF:
		if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
			if r2, ok := hex4(b[6:]); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
				return 0x10000 + (r1-0xD800)<<10 + (r2 - 0xDC00), 12
			}
		}
		return -1, 6 // a high half with no low half after it
	}
	return r1, 6
}

// hex4 decodes the 4 hex digits of the \uXXXX at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 6 {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// timestamp is an event's time field: a JSON number only. (encoding/json takes a string of
// digits into a json.Number too: "1700000000" would pass.) null is the same as no timestamp.
type timestamp string

func (t *timestamp) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = ""
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errorf(http.StatusBadRequest, "field \"timestamp\": want a JSON number of Unix seconds, got %s", jsonKind(b))
	}
	*t = timestamp(b)
	return nil
}

func jsonKind(b []byte) string {
	switch b[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	}
	return "something else"
}
