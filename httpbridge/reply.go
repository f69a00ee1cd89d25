package httpbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// apiError is a 4xx/5xx answer: {"error": msg}.
type apiError struct {
	code       int
	msg        string
	retryAfter int // seconds, for 429 and 503; 0: no Retry-After
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{code: http.StatusInternalServerError, msg: "internal error"}
	}
	if ae.code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rtbus", Basic realm="rtbus"`)
	}
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	writeJSON(w, ae.code, map[string]string{"error": ae.msg})
}

// decodeBody reads one JSON object from the size-limited body into v, refusing text that
// is not UTF-8 (checkText).
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", mb.Limit)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errorf(http.StatusRequestTimeout, "request body not received in time")
		}
		return errorf(http.StatusBadRequest, "cannot read the request body: %v", err)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return errorf(http.StatusBadRequest, "request body is empty: want a JSON object")
	}
	if body[0] != '{' {
		return errorf(http.StatusBadRequest, "request body is not a JSON object")
	}
	if err := checkText(body); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return ae // a field's own check (timestamp)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errorf(http.StatusBadRequest, "field %q: want a JSON %s, got %s", te.Field, te.Type.Kind(), te.Value)
		}
		return errorf(http.StatusBadRequest, "request body is not valid JSON: %v", err)
	}
	// The body was trimmed: anything after the object is more than it. (d.More would not
	// see a stray "}" or "]".)
	if off := d.InputOffset(); off != int64(len(body)) {
		return errorf(http.StatusBadRequest, "request body goes on after its JSON object (at byte %d)", off)
	}
	return nil
}
