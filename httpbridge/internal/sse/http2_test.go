package sse_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

// TestServerEndIsCleanOverHTTP2: a stream the server ends (its token expired, its user
// revoked, the hub closed) ends its body with a clean EOF over HTTP/2, and over HTTP/1.1
// when it is not detached, rather than with a stream reset or a cut connection.
func TestServerEndIsCleanOverHTTP2(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		name := "HTTP/1.1 attached"
		if h2 {
			name = "HTTP/2"
		}
		t.Run(name, func(t *testing.T) {
			base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			var now atomic.Int64
			now.Store(base.UnixNano())
			hub := sse.NewHub(sse.HubOptions{KeepAlive: 20 * time.Millisecond, Now: func() time.Time { return time.Unix(0, now.Load()) }})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				o := sse.StreamOptions{Tenant: "a", User: r.URL.Query().Get("user"), Detach: h2}
				if e := r.URL.Query().Get("expires"); e != "" {
					n, _ := strconv.ParseInt(e, 10, 64)
					o.Expires = time.Unix(0, n)
				}
				hub.Serve(r.Context(), w, o)
			}))
			srv.EnableHTTP2 = h2
			srv.StartTLS()
			defer srv.Close()
			defer hub.Close()

			type result struct {
				proto int
				err   error
			}
			open := func(query string) <-chan result {
				ch := make(chan result, 1)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/?"+query, nil)
				resp, err := srv.Client().Do(req)
				if err != nil {
					cancel()
					t.Fatal(err)
				}
				go func() {
					defer cancel()
					defer resp.Body.Close()
					_, err := io.Copy(io.Discard, resp.Body)
					ch <- result{resp.ProtoMajor, err}
				}()
				return ch
			}
			expiring := open("user=u1&expires=" + strconv.FormatInt(base.Add(time.Hour).UnixNano(), 10))
			revoked := open("user=u2")
			closed := open("user=u3")
			deadline := time.Now().Add(10 * time.Second)
			for hub.Streams() < 3 {
				if time.Now().After(deadline) {
					t.Fatal("streams not registered")
				}
				time.Sleep(5 * time.Millisecond)
			}
			check := func(what string, ch <-chan result) {
				t.Helper()
				select {
				case r := <-ch:
					if r.err != nil {
						t.Errorf("%s: the body ended with %v, want a clean EOF", what, r.err)
					}
					if h2 && r.proto != 2 {
						t.Errorf("%s: HTTP/%d, want HTTP/2", what, r.proto)
					}
				case <-time.After(10 * time.Second):
					t.Errorf("%s: the stream did not end", what)
				}
			}
			now.Store(base.Add(time.Hour).UnixNano())
			check("expired", expiring)
			hub.CloseUser("u2")
			check("revoked", revoked)
			hub.Close()
			check("hub closed", closed)
		})
	}
}
