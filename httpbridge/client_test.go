package httpbridge_test

import (
	"net/http"
	"strings"
	"testing"
)

// The browser client and the demo page are served from the binary, revalidated by ETag.
func TestClientFiles(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct{ path, ctype, contains string }{
		{"/client/rtbus.js", "text/javascript; charset=utf-8", "export class Client"},
		{"/demo/", "text/html; charset=utf-8", `<script type="module" src="demo.js">`},
		{"/demo/demo.js", "text/javascript; charset=utf-8", `from "../client/rtbus.js"`},
	} {
		r := e.expect(e.do("GET", c.path, "", nil), 200)
		if got := r.hdr.Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if !strings.Contains(string(r.body), c.contains) {
			t.Errorf("%s: body lacks %q", c.path, c.contains)
		}
		etag := r.hdr.Get("ETag")
		if len(etag) < 10 || etag[0] != '"' || r.hdr.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: ETag %q, Cache-Control %q", c.path, etag, r.hdr.Get("Cache-Control"))
		}

		req, _ := http.NewRequest("GET", e.url+c.path, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err := e.cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match %s: status %d, want 304", c.path, etag, resp.StatusCode)
		}

		h := e.expect(e.do("HEAD", c.path, "", nil), 200)
		if len(h.body) != 0 || h.hdr.Get("ETag") != etag {
			t.Errorf("HEAD %s: %d bytes, ETag %q", c.path, len(h.body), h.hdr.Get("ETag"))
		}
		e.expect(e.do("POST", c.path, "", nil), 405)
	}

	req, _ := http.NewRequest("GET", e.url+"/demo", nil)
	resp, err := e.cl.Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/demo/" {
		t.Errorf("/demo: %d to %q, want 301 to /demo/", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.expect(e.do("GET", "/demo/nothing", "", nil), 404)
	e.expect(e.do("GET", "/client/other.js", "", nil), 404)
}
