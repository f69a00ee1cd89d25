package httpbridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge"
	"github.com/rtbus/rtbus/rpc"
	"github.com/rtbus/rtbus/transport"
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

// Example_embed is a host program with everything in one process: the bus, .broker's
// methods, a UNIX socket for plugins and the HTTP bridge, shut down in the right order.
// examples/embed is the same as a runnable program.
func Example_embed() {
	dir, _ := os.MkdirTemp("", "embed-example-")
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	b := bus.New(bus.WithLogger(quiet))
	rpc.ServeBroker(b) // else calls to .broker fail with "not registered"
	srv := transport.NewServer(b)
	sock := filepath.Join(dir, "bus.sock")
	srv.Listen(sock, transport.Config{UnixMode: 0o600, Logger: quiet}) // or "127.0.0.1:7777", "ws://…"
	bridge, err := httpbridge.New(b, httpbridge.Config{DataDir: filepath.Join(dir, "data"), Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	hs := httptest.NewServer(bridge.Handler()) // or an http.Server of your own

	// Shut down the front door first (the bridge ends its streams, so that the HTTP
	// server is not kept waiting), then the bus (it warns its clients), then the socket
	// server (it lets them read the warning and removes the socket file).
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		bridge.Shutdown(ctx)
		hs.Close()
		b.Close()
		srv.Shutdown(ctx)
		_, err := os.Stat(sock)
		fmt.Println("socket removed:", os.IsNotExist(err))
	}()

	// A plugin on the socket sees what front ends publish over HTTP. (The sign-up and the
	// login each hash a password at bcrypt's default cost: seconds under the race detector.)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plugin, _ := transport.Dial(ctx, sock, "plugin", transport.DialOptions{})
	defer plugin.Close()
	plugin.Subscribe(bus.QoSProcessed, httpbridge.EventTopic("acme", "door"))
	resp, _ := http.Post(hs.URL+"/users", "application/json",
		strings.NewReader(`{"username":"ann","password":"correct horse","tenant_id":"acme"}`))
	resp.Body.Close()
	resp, _ = http.Post(hs.URL+"/login", "application/json", strings.NewReader(`{"username":"ann","password":"correct horse"}`))
	var login struct{ JWT string }
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", hs.URL+"/insert", strings.NewReader(`{"event":"door","collection_id":"hall","data":{"open":true}}`))
	req.Header.Set("Authorization", "Bearer "+login.JWT)
	req.Header.Set("Content-Type", "application/json")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	f, err := plugin.Recv(ctx)
	fmt.Println(f.Topic, err)
	// Output:
	// rtbus/http/acme/events/door <nil>
	// socket removed: true
}
