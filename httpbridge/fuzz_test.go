package httpbridge_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rtbus/rtbus/httpbridge"
)

// FuzzEscapeTopicLevel: an escaped tenant or event name is one topic level, free of
// wildcards, and decodes back to itself.
func FuzzEscapeTopicLevel(f *testing.F) {
	for _, s := range []string{"acme", "a/b", "100%", "+#", "é/%2F", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := httpbridge.EscapeTopicLevel(s)
		if strings.ContainsAny(e, "/+#") {
			t.Fatalf("%q escaped to %q", s, e)
		}
		if d, err := url.PathUnescape(e); err != nil || d != s {
			t.Fatalf("%q -> %q -> %q, %v", s, e, d, err)
		}
	})
}

// FuzzCredentials: whatever the Authorization header, a request is answered 200 or 401 with
// a JSON error, and nothing panics.
func FuzzCredentials(f *testing.F) {
	e := newEnv(f, nil)
	u := e.signup("ann", "acme")
	parts := strings.Split(u.token, ".")
	f.Add("Bearer " + u.token)
	f.Add("Bearer " + parts[0] + "." + parts[1] + ".")
	f.Add("Bearer eyJhbGciOiJub25lIn0." + parts[1] + ".")
	f.Add("Basic YW5uOnB3LWFubg==")
	f.Add("Basic !")
	f.Add("bearer")
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, auth string) {
		if strings.HasPrefix(strings.ToLower(auth), "basic") {
			return // each try costs a bcrypt comparison: covered by the tests instead
		}
		req := httptest.NewRequest("GET", "/verify", nil)
		req.Header["Authorization"] = []string{auth}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch {
		case w.Code == http.StatusOK && auth != "Bearer "+u.token && !strings.Contains(auth, u.token):
			t.Fatalf("%q accepted", auth)
		case w.Code != http.StatusOK && w.Code != http.StatusUnauthorized:
			t.Fatalf("%q: status %d", auth, w.Code)
		case w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Body.String(), `{"error":`):
			t.Fatalf("%q: body %s", auth, w.Body)
		}
	})
}

// FuzzInternalAPI: whatever the body, an internal route answers with its success code or a
// 4xx JSON error, never a 5xx, and nothing panics.
func FuzzInternalAPI(f *testing.F) {
	e := newEnv(f, nil)
	e.signup("ann", "acme")
	routes := []string{"/v1/messages", "/v1/events", "/v1/session-blacklist"}
	for i, b := range []string{
		`{"tenant_id":"acme","user":"ann","event":"x","data":{"a":1}}`,
		`{"tenant_id":"acme","user":"ann","event":"x","data":1,"timestamp":5}`,
		`{"session_id":"s","validity_seconds":60}`,
		`{"tenant_id":"acme","event":"x","data":[1,"\u0000"]}`,
		`{"session_id":"s","validity_seconds":1e400}`,
		`{}`, `[]`, `nul`, ``,
	} {
		f.Add(uint8(i), b)
	}
	h := e.srv.InternalHandler()
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		req := httptest.NewRequest("POST", routes[int(route)%len(routes)], strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch {
		case w.Code == http.StatusOK || w.Code == http.StatusCreated || w.Code == http.StatusAccepted:
		case w.Code >= 400 && w.Code < 500 && strings.HasPrefix(w.Body.String(), `{"error":`):
		default:
			t.Fatalf("%s %q: status %d %s", req.URL.Path, body, w.Code, w.Body)
		}
	})
}
