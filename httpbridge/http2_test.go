package httpbridge_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge"
)

// TestStreamEndOverHTTP2: over HTTP/2 (TLS), a stream that the server ends, here by
// revoking its user, ends with the final message and a clean end of the body, not a
// stream reset.
func TestStreamEndOverHTTP2(t *testing.T) {
	clock := newTestClock()
	srv, err := httpbridge.New(nil, testConfig(t.TempDir(), clock))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.EnableHTTP2 = true
	hs.StartTLS()
	defer hs.Close()
	cl := hs.Client()
	post := func(path, body string, v any) {
		t.Helper()
		resp, err := cl.Post(hs.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		if v != nil {
			json.NewDecoder(resp.Body).Decode(v)
		}
	}
	post("/users", `{"username":"ann","password":"correct horse","tenant_id":"acme"}`, nil)
	var login struct{ JWT string }
	post("/login", `{"username":"ann","password":"correct horse"}`, &login)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+"/sse?token="+login.JWT, nil)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("HTTP/%d, want HTTP/2", resp.ProtoMajor)
	}
	body := make(chan string, 1)
	ended := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(resp.Body)
		body <- string(b)
		ended <- err
	}()
	post("/revoke_user", `{"admin_token":"`+adminToken+`","username":"ann"}`, nil)
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the stream ended with %v, want a clean end", err)
		}
		if b := <-body; !strings.Contains(b, "event:") || !strings.Contains(b, "revoked") {
			t.Errorf("no final message in the stream:\n%s", b)
		}
	case <-ctx.Done():
		t.Fatal("the stream of a revoked user did not end")
	}
}
