package httpbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeBody: a body decodeBody accepts is valid UTF-8 whose every string, keys and
// nested data included, decodes without a replacement character it did not itself hold, and
// whose timestamp is a number; anything else is a 4xx, and nothing panics.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		`{"event":"e","data":{"a":[1,"\u00e9"]},"timestamp":1800000000}`,
		`{"event":"e","data":"\ud83d\ude00","timestamp":"1800000000"}`,
		`{"event":"e\ud800","data":1}`,
		"{\"event\":\"e\xff\",\"data\":1}",
		`{"event":"\\ud800","data":"\uFFFD","timestamp":null}`,
		"{\"k\xc3\":1}",
		`{"a":"\udc00\ud800\udc00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/insert", bytes.NewReader(body))
		var req insertRequest
		err := decodeBody(r, &req)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.code != http.StatusBadRequest && ae.code != http.StatusRequestEntityTooLarge {
				t.Fatalf("%q: %v", body, err)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted invalid UTF-8: %q", body)
		}
		if ts := string(req.Timestamp); ts != "" && ts[0] != '-' && (ts[0] < '0' || ts[0] > '9') {
			t.Fatalf("timestamp %q accepted", ts)
		}
		// A replacement character after decoding must have been in the body (as itself or as
		// an escape, counted loosely).
		if bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) {
			return
		}
		var v any
		if json.Unmarshal(body, &v) != nil {
			return // accepted by the decoder into insertRequest only where the fields allow
		}
		if s, ok := replaced(v); ok {
			t.Fatalf("%q decoded with a replacement character in %q", body, s)
		}
	})
}

// replaced finds a string or key of v that holds U+FFFD.
func replaced(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, strings.ContainsRune(x, utf8.RuneError)
	case []any:
		for _, e := range x {
			if s, ok := replaced(e); ok {
				return s, true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, utf8.RuneError) {
				return k, true
			}
			if s, ok := replaced(e); ok {
				return s, true
			}
		}
	}
	return "", false
}
