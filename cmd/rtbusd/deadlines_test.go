package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestDaemonHTTPDeadlines: from outside, against rtbusd with short deadlines: a body trickled
// to the public POST /users is cut with 408, an idle keep-alive connection is closed, streams
// (SSE, WebSocket, a long poll) outlive both deadlines, the connection cap answers 503 and
// says so in the log, and failed logins are limited.
func TestDaemonHTTPDeadlines(t *testing.T) {
	bin := buildDaemon(t)
	cmd := exec.Command(bin, "-B", filepath.Join(t.TempDir(), "bus.sock"), "-http", "127.0.0.1:0",
		"-data-dir", t.TempDir(), "-http-body-timeout", "1s", "-http-write-timeout", "2s",
		"-http-idle-timeout", "1s", "-http-max-conns", "5", "-login-failures-user", "2", "-login-failure-window", "1m")
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	re := regexp.MustCompile(`address=http://([0-9.:]+)`)
	waitFor(t, "the bridge's address", func() bool { return re.MatchString(logs.String()) })
	addr := re.FindStringSubmatch(logs.String())[1]
	base := "http://" + addr

	// readAll reads c until the server closes it, failing if that takes longer than limit.
	readAll := func(c net.Conn, limit time.Duration) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(limit))
		b, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection still open after %v; read %q", limit, b)
		}
		return string(b)
	}

	t.Run("slow body", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body := `{"username":"slow","password":"pw","tenant_id":"acme","info":"` + strings.Repeat("x", 100) + `"}`
		fmt.Fprintf(c, "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		go func() { // a byte every 100 ms: 14 s for the whole body
			for i := 0; i < len(body); i++ {
				time.Sleep(100 * time.Millisecond)
				if _, err := c.Write([]byte{body[i]}); err != nil {
					return
				}
			}
		}()
		began := time.Now()
		got := readAll(c, 6*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, `{"error":"request body not received in time"}`) {
			t.Fatalf("answer %q", got)
		}
		t.Logf("408 and closed after %v", time.Since(began).Round(time.Millisecond))
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /verify HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		c.SetReadDeadline(time.Now().Add(6 * time.Second))
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("idle keep-alive connection: %v, want EOF", err)
		}
	})

	// Each request on a connection of its own, closed after it: idle keep-alive connections
	// would hold places of the cap.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(path, auth, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s: %s %v", path, resp.Status, m)
		}
		return m
	}
	verify := func() int {
		resp, err := client.Get(base + "/verify")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	post("/users", "", `{"username":"ann","password":"pw","tenant_id":"acme"}`)
	tok, _ := post("/login", "", `{"username":"ann","password":"pw"}`)["jwt"].(string)

	t.Run("login failures", func(t *testing.T) {
		try := func() *http.Response {
			resp, err := client.Post(base+"/login", "application/json", strings.NewReader(`{"username":"ann","password":"guess"}`))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		for i := 0; i < 2; i++ {
			if r := try(); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("failure %d: %s", i, r.Status)
			}
		}
		if r := try(); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "30" {
			t.Fatalf("third failure in a row: %s, Retry-After %q; want 429 and 30", r.Status, r.Header.Get("Retry-After"))
		}
	})

	// Two streams hold two places of the three; each must outlive the body and write deadlines.
	opened := time.Now()
	var lines []chan string
	for i, path := range []string{"/sse?", "/events/acme?format=data&"} {
		resp, err := client.Get(base + path + "token=" + url.QueryEscape(tok))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, resp, err)
		}
		defer resp.Body.Close()
		ch := make(chan string, 100)
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				ch <- sc.Text()
			}
			close(ch)
		}()
		lines = append(lines, ch)
	}

	// A WebSocket and a long poll hold two more.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws?token="+url.QueryEscape(tok), &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.CloseNow()
	wsEvents := make(chan string, 100)
	go func() {
		defer close(wsEvents)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var m struct{ Event string }
			json.Unmarshal(b, &m)
			wsEvents <- m.Event
		}
	}()
	resp, err := client.Get(base + "/poll?token=" + url.QueryEscape(tok))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first poll: %v %v", resp, err)
	}
	var first struct {
		LastEventID string `json:"last_event_id"`
	}
	json.NewDecoder(resp.Body).Decode(&first)
	resp.Body.Close()
	polled := make(chan string, 1)
	// Connected: the poll's connection is in the listener's queue, ahead of any dialled after.
	pollConnected := make(chan struct{})
	go func() {
		req, _ := http.NewRequest("GET", base+"/poll?wait=20&last_event_id="+first.LastEventID+"&token="+url.QueryEscape(tok), nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(httptrace.GotConnInfo) { close(pollConnected) },
		}))
		resp, err := client.Do(req)
		if err != nil {
			polled <- err.Error()
			return
		}
		defer resp.Body.Close()
		var m struct{ Messages []struct{ Event string } }
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || len(m.Messages) == 0 {
			polled <- fmt.Sprintf("%s %v %v", resp.Status, m, err)
			return
		}
		polled <- m.Messages[0].Event
	}()

	select {
	case <-pollConnected:
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll did not connect")
	}

	t.Run("cap", func(t *testing.T) {
		// The streams hold four places of the five: connections that send nothing take the
		// rest, however many that is (one, unless a stream's place has not been freed yet).
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		waitFor(t, "a connection over the cap to be refused", func() bool {
			if len(held) < 5 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			return verify() == http.StatusServiceUnavailable
		})
		for i := 0; i < 3; i++ {
			resp, err := client.Get(base + "/verify")
			if err != nil {
				t.Fatalf("refused connection %d: %v, want a 503 answer", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "too many connections") {
				t.Fatalf("connection over the cap: %s %s", resp.Status, b)
			}
		}
		if n := strings.Count(logs.String(), "connection limit reached"); n != 1 ||
			!strings.Contains(logs.String(), "max_conns=5") || !strings.Contains(logs.String(), "listener=http") {
			t.Fatalf("want one line naming the listener and its cap:\n%s", logs)
		}
		for _, c := range held {
			c.Close()
		}
		waitFor(t, "the freed place to be served", func() bool { return verify() == http.StatusUnauthorized })
	})

	t.Run("streams outlive the deadlines", func(t *testing.T) {
		// Past both the body (1 s) and the write (2 s) deadlines of the streams' requests.
		time.Sleep(time.Until(opened.Add(3500 * time.Millisecond)))
		post("/insert", "Bearer "+tok, `{"event":"hello","data":{"n":1}}`)
		for i, ch := range lines {
			// The first event after the keep-alives (which can come first on a slow machine).
			l, ok := "", true
			for ok && (!strings.HasPrefix(l, "event:") || l == "event:keepalive") {
				select {
				case l, ok = <-ch:
				case <-time.After(10 * time.Second):
					t.Fatalf("stream %d got nothing", i)
				}
			}
			if !ok || l != "event:hello" {
				t.Fatalf("stream %d: line %q (open: %v), want event:hello", i, l, ok)
			}
		}
		for {
			select {
			case ev, ok := <-wsEvents:
				if !ok {
					t.Fatal("the WebSocket ended")
				}
				if ev != "hello" {
					continue // the state, if any
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the WebSocket got nothing")
			}
			break
		}
		select {
		case ev := <-polled:
			if ev != "hello" {
				t.Fatalf("long poll: %s", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the long poll did not answer")
		}
	})
}
