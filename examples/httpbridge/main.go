// Command httpbridge walks through the HTTP bridge as a front end uses it: sign up, log in,
// open the event stream, insert an event now and one a second in the future, and print what
// the stream delivers. With -url it talks to a running rtbusd (e.g. http://127.0.0.1:8080);
// without, it starts a bridge of its own on a free port over a temporary data directory, and
// also shows a bus client watching the publications.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/httpbridge"
)

func main() {
	url := flag.String("url", "", "base URL of a running bridge; empty starts one in-process")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, *url); err != nil {
		log.Fatal(err)
	}
}

// bcryptCost is the bridge's password hashing cost when it starts one of its own; 0 is the
// bridge's default. The test lowers it: under the race detector one hash of the default cost
// takes seconds, and the walkthrough makes several.
var bcryptCost int

func run(ctx context.Context, out io.Writer, base string) error {
	if base == "" {
		dir, err := os.MkdirTemp("", "rtbus-example-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b := bus.New()
		defer b.Close()
		srv, err := httpbridge.New(b, httpbridge.Config{DataDir: dir, BcryptCost: bcryptCost, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			return err
		}
		defer srv.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go http.Serve(ln, srv.Handler())
		base = "http://" + ln.Addr().String()

		// A bus client sees every publication of the bridge.
		watcher, _ := b.RegisterClient("watcher")
		watcher.Subscribe(bus.QoSProcessed, httpbridge.TopicPrefix+"+/events/#")
		go func() {
			for f := range watcher.Frames() {
				if strings.HasPrefix(f.Topic, httpbridge.TopicPrefix) {
					fmt.Fprintf(out, "bus: %s\n", f.Topic)
				}
			}
		}()
	}

	// 1. Sign up (a unique name, so the walkthrough runs more than once on one server).
	var suffix [4]byte
	rand.Read(suffix[:])
	name := "ann-" + hex.EncodeToString(suffix[:])
	var signup struct{ ID string }
	if err := call(ctx, "POST", base+"/users", "", map[string]any{
		"username": name, "password": "correct horse", "tenant_id": "acme", "info": map[string]string{"name": "Ann"},
	}, &signup); err != nil {
		return err
	}
	fmt.Fprintln(out, "signed up")

	// 2. Log in: a JWT.
	var login struct{ JWT string }
	if err := call(ctx, "POST", base+"/login", "", map[string]string{"username": name, "password": "correct horse"}, &login); err != nil {
		return err
	}
	auth := "Bearer " + login.JWT
	fmt.Fprintln(out, "logged in")

	// 3. Watch the stream of the tenant (EventSource in a browser: /sse?token=JWT).
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/sse", nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)

	// 4. Insert an event now, and one a second from now.
	var now struct{ Event struct{ Timestamp int64 } }
	if err := call(ctx, "POST", base+"/insert", auth, map[string]any{"event": "greeting", "data": map[string]string{"text": "hello"}, "collection_id": "lobby"}, &now); err != nil {
		return err
	}
	if err := call(ctx, "POST", base+"/insert", auth, map[string]any{"event": "greeting", "data": map[string]string{"text": "a second later"}, "collection_id": "lobby", "timestamp": now.Event.Timestamp + 1}, nil); err != nil {
		return err
	}
	fmt.Fprintln(out, "inserted two events, the second scheduled")

	// 5. The stream: first the state (here, the profile event), then each publication.
	got := 0
	for got < 3 && lines.Scan() {
		l := lines.Text()
		if l == "" || strings.HasPrefix(l, "retry:") || strings.HasPrefix(l, "id:") || l == "event:keepalive" || l == "data:{}" {
			continue
		}
		if strings.HasPrefix(l, "data:") {
			var rec struct {
				Event string
				Data  json.RawMessage
			}
			json.Unmarshal([]byte(l[5:]), &rec)
			fmt.Fprintf(out, "stream: %s %s\n", rec.Event, rec.Data)
			got++
		}
	}
	if got < 3 {
		return fmt.Errorf("stream ended after %d messages: %v", got, lines.Err())
	}
	return nil
}

// call sends a JSON request and decodes the JSON reply into v; a 4xx/5xx is an error.
func call(ctx context.Context, method, url, auth string, body, v any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, rb)
	}
	if v != nil {
		return json.Unmarshal(rb, v)
	}
	return nil
}
