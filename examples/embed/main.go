// Command embed is a host program that embeds all of rtbus, the most common use of the
// library: the bus, .broker's methods, a UNIX socket for plugins and the HTTP bridge for
// front ends, in one process. It shows the pieces talking to each other (a front end's event,
// inserted over HTTP, reaches a plugin on the socket), then shuts them down in the right
// order. With -serve it keeps serving until interrupted and prints where.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge"
	"github.com/rtbus/rtbus/rpc"
	"github.com/rtbus/rtbus/transport"
)

func main() {
	serve := flag.Bool("serve", false, "after the demonstration, keep serving until interrupted")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *serve); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer, serve bool) (err error) {
	dir, err := os.MkdirTemp("", "rtbus-embed")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	// 1. The bus, and .broker's methods: without ServeBroker a call to .broker fails with
	// "not registered".
	b := bus.New(bus.WithLogger(logger))
	if _, err := rpc.ServeBroker(b); err != nil {
		return err
	}

	// 2. A UNIX socket for plugins (BUS/RT clients in any language); transport.Config also
	// takes an access policy (Policy) and, for TCP or WebSocket addresses, TLS.
	sock := filepath.Join(dir, "bus.sock")
	srv := transport.NewServer(b)
	if _, err := srv.Listen(sock, transport.Config{UnixMode: 0o600, Logger: logger}); err != nil {
		b.Close()
		return err
	}

	// 3. The HTTP bridge, on the same bus, behind a plain http.Server.
	bridge, err := httpbridge.New(b, httpbridge.Config{DataDir: filepath.Join(dir, "data"), Logger: logger})
	if err != nil {
		b.Close()
		srv.Close()
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		bridge.Close()
		b.Close()
		srv.Close()
		return err
	}
	hs := &http.Server{Handler: bridge.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	base := "http://" + ln.Addr().String()

	// The shutdown order: the front door first, so that no request or stream is cut off
	// by a bus that is gone (bridge.Shutdown ends the streams that would keep
	// hs.Shutdown waiting, and flushes the store); then the bus, which warns its clients
	// (.broker/warn) and disconnects them; then the socket server, which lets the
	// connections write that warning and removes its socket file.
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, bridge.Shutdown(sctx), hs.Shutdown(sctx))
		b.Close()
		err = errors.Join(err, srv.Shutdown(sctx))
	}()

	// A plugin on the socket watches what front ends publish.
	plugin, err := transport.Dial(ctx, sock, "example.plugin", transport.DialOptions{})
	if err != nil {
		return err
	}
	defer plugin.Close()
	if err := plugin.Subscribe(bus.QoSProcessed, httpbridge.TopicPrefix+"#"); err != nil {
		return err
	}
	caller := rpc.New(plugin, rpc.Options{})
	list, err := rpc.CallValue[struct {
		Clients []struct {
			Name string `msgpack:"name"`
			Kind string `msgpack:"kind"`
		} `msgpack:"clients"`
	}](ctx, caller, bus.BrokerName, "client.list", nil)
	if err != nil {
		return err
	}
	for _, c := range list.Clients {
		fmt.Fprintf(out, ".broker lists %s (%s)\n", c.Name, c.Kind)
	}
	var frames = make(chan bus.Frame, 16)
	caller.HandleFrame(func(f bus.Frame) {
		f.Payload = bytes.Clone(f.Payload)
		frames <- f
	})

	// A front end signs up, logs in and inserts an event over HTTP.
	if err := post(ctx, base+"/users", "", `{"username":"ann","password":"correct horse","tenant_id":"acme"}`, nil); err != nil {
		return err
	}
	var login struct{ JWT string }
	if err := post(ctx, base+"/login", "", `{"username":"ann","password":"correct horse"}`, &login); err != nil {
		return err
	}
	if err := post(ctx, base+"/insert", login.JWT, `{"event":"door","collection_id":"hall","data":{"open":true}}`, nil); err != nil {
		return err
	}
	fmt.Fprintln(out, "a front end inserted an event over HTTP")
	for {
		select {
		case f := <-frames:
			if f.Topic != httpbridge.EventTopic("acme", "door") {
				continue // the sign-up's profile event comes first
			}
			fmt.Fprintf(out, "the plugin got it on %s\n", f.Topic)
			if serve {
				fmt.Fprintf(out, "serving: socket %s, HTTP %s; interrupt to stop\n", sock, base)
				<-ctx.Done()
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("the plugin got no publication")
		}
	}
}

// post sends a JSON body, with a bearer token if any, and decodes the reply into v.
func post(ctx context.Context, url, token, body string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, data)
	}
	if v != nil {
		return json.Unmarshal(data, v)
	}
	return nil
}
