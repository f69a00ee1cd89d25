package httpbridge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge"
)

func ExampleNew() {
	dir, _ := os.MkdirTemp("", "httpbridge-example-")
	defer os.RemoveAll(dir)
	b := bus.New()
	defer b.Close()
	srv, err := httpbridge.New(b, httpbridge.Config{
		DataDir: dir,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(srv.Handler()) // rtbusd: http.Server on -http, TLS with -tls-cert
	defer hs.Close()

	resp, _ := http.Post(hs.URL+"/users", "application/json",
		strings.NewReader(`{"username":"ann","password":"correct horse","tenant_id":"acme"}`))
	resp.Body.Close()
	fmt.Println("sign-up:", resp.StatusCode)
	resp, _ = http.Post(hs.URL+"/login", "application/json", strings.NewReader(`{"username":"ann","password":"wrong"}`))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("login:", resp.StatusCode, strings.TrimSpace(string(body)))
	fmt.Println(httpbridge.EventTopic("acme", "door/open"))
	// Output:
	// sign-up: 201
	// login: 401 {"error":"wrong username or password"}
	// rtbus/http/acme/events/door%2Fopen
}
