// Package webclient holds the browser side of the gateway, embedded in the binary: the client
// module (rtbus.js) and the demo page built on it.
package webclient

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"time"
)

//go:embed rtbus.js demo/index.html demo/demo.js
var files embed.FS

// File is one embedded file, ready to serve.
type File struct {
	Route string // the URL path it is served at
	name  string
	ctype string
	body  []byte
	etag  string
}

// Files lists the embedded files and their routes: /client/rtbus.js, /demo/ and /demo/demo.js.
var Files = func() []File {
	list := []File{
		{Route: "/client/rtbus.js", name: "rtbus.js", ctype: "text/javascript; charset=utf-8"},
		{Route: "/demo/{$}", name: "demo/index.html", ctype: "text/html; charset=utf-8"},
		{Route: "/demo/demo.js", name: "demo/demo.js", ctype: "text/javascript; charset=utf-8"},
	}
	for i := range list {
		b, err := files.ReadFile(list[i].name)
		if err != nil {
			panic(err) // the embed directive above names each file
		}
		sum := sha256.Sum256(b)
		list[i].body = b
		list[i].etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	}
	return list
}()

// ServeHTTP answers GET and HEAD with the file. The URLs are not versioned, so a browser
// revalidates every time (no-cache) and gets a 304 while the ETag still matches: an upgraded
// server's client is picked up at once, an unchanged one costs no transfer.
func (f File) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if f.ctype[:9] == "text/html" {
		// The page loads its own script and talks to its own server, nothing else.
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors 'none'")
	}
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
