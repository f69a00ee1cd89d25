package httpserve_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtbus/rtbus/internal/httpserve"
	"github.com/rtbus/rtbus/internal/testutil"
)

// start serves h on a free loopback port with o and returns its address.
func start(t *testing.T, h http.Handler, o httpserve.Options) (string, *testutil.Buffer) {
	t.Helper()
	logs := &testutil.Buffer{}
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := httpserve.New(h, o)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), logs
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ended waits (at most limit) for the server to answer or close c, and returns what it read.
func ended(t *testing.T, c net.Conn, limit time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after %v (read %q)", limit, b)
	}
	return string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// readBody answers 408 when the body does not arrive in time, as rtbus's handlers do.
var readBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			http.Error(w, "body too slow", http.StatusRequestTimeout)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	io.WriteString(w, "ok")
})

// TestSlowBodyCut: a body trickled a byte at a time is cut at BodyTimeout, well before it
// would have been whole: 408, connection closed.
func TestSlowBodyCut(t *testing.T) {
	addr, _ := start(t, readBody, httpserve.Options{BodyTimeout: 300 * time.Millisecond})
	c := dial(t, addr)
	const n = 100 // 100 bytes, one every 50 ms: 5 s to send
	fmt.Fprintf(c, "POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; i < n; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	began := time.Now()
	got := ended(t, c, 4*time.Second)
	if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
		t.Fatalf("answer %q", got)
	}
	t.Logf("cut after %v", time.Since(began).Round(time.Millisecond))
}

// TestSlowHeadersCut: headers that never end are cut at ReadHeaderTimeout.
func TestSlowHeadersCut(t *testing.T) {
	addr, _ := start(t, readBody, httpserve.Options{ReadHeaderTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	ended(t, c, 4*time.Second)
}

// TestIdleKeepAliveClosed: a keep-alive connection that sends no second request is closed
// after IdleTimeout; one that keeps sending is not.
func TestIdleKeepAliveClosed(t *testing.T) {
	addr, _ := start(t, readBody, httpserve.Options{IdleTimeout: 300 * time.Millisecond})
	c := dial(t, addr)
	r := bufio.NewReader(c)
	for i := 0; i < 3; i++ { // three requests, each within the idle time of the last
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %s", i, resp.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.SetReadDeadline(time.Now().Add(4 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
}

// TestMaxConns: with MaxConns connections open, the next is answered 503 and closed, the log
// says so once however many are refused, and a place freed is served again.
func TestMaxConns(t *testing.T) {
	const max = 3
	addr, logs := start(t, readBody, httpserve.Options{MaxConns: max})
	held := make([]net.Conn, max)
	for i := range held {
		held[i] = dial(t, addr)
		// A request that was served proves the connection holds a place.
		io.WriteString(held[i], "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(held[i]), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
	}
	for i := 0; i < 5; i++ {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("refused connection %d: %v, want a 503 answer", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.HasPrefix(string(body), `{"error":"too many connections`) {
			t.Fatalf("refused connection %d: %s %q %q", i, resp.Status, resp.Header, body)
		}
	}
	if n := strings.Count(logs.String(), "connection limit reached"); n != 1 {
		t.Fatalf("%d log lines about the limit for 5 refusals, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "max_conns=3") || !strings.Contains(logs.String(), "address="+addr) {
		t.Fatalf("the log line does not name the listener and its cap:\n%s", logs)
	}
	held[0].Close()
	waitFor(t, "a freed place to be served", func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// TestMaxConnsHijacked: a hijacked connection keeps its place until it is closed.
func TestMaxConnsHijacked(t *testing.T) {
	hijacked := make(chan net.Conn, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		hijacked <- c
	})
	addr, _ := start(t, h, httpserve.Options{MaxConns: 1})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	sc := <-hijacked
	resp, err := http.Get("http://" + addr + "/")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second connection while the first is hijacked: %v %v", resp, err)
	}
	resp.Body.Close()
	sc.Close()
	c2 := dial(t, addr)
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case sc := <-hijacked:
		sc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the place of a closed hijacked connection was not freed")
	}
}

// tick is a response that writes a line every 50 ms for 1 s, calling prep first.
func tick(prep func(w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prep(w, r)
		rc := http.NewResponseController(w)
		for i := 0; i < 20; i++ {
			if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

func countLines(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		n++
	}
	return n
}

// TestStreamOutlivesDeadlines: a response that calls Stream lasts past the body and write
// deadlines; the same response without it is cut.
func TestStreamOutlivesDeadlines(t *testing.T) {
	o := httpserve.Options{BodyTimeout: 200 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}
	addr, _ := start(t, tick(func(w http.ResponseWriter, r *http.Request) {
		if !httpserve.Stream(w) {
			t.Error("Stream could not lift the deadlines")
		}
	}), o)
	if n := countLines(t, addr); n != 20 {
		t.Fatalf("stream got %d lines of 20", n)
	}
	addr, _ = start(t, tick(func(http.ResponseWriter, *http.Request) {}), o)
	if n := countLines(t, addr); n >= 20 {
		t.Fatalf("without Stream the response was not cut: %d lines", n)
	}
}

// TestStreamHijacked: lifted deadlines stay lifted on a connection the handler takes over.
func TestStreamHijacked(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpserve.Stream(w)
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		go func() {
			defer c.Close()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
			for i := 0; i < 20; i++ {
				time.Sleep(50 * time.Millisecond)
				if _, err := fmt.Fprintf(c, "line %d\n", i); err != nil {
					return
				}
			}
		}()
	})
	addr, _ := start(t, h, httpserve.Options{BodyTimeout: 200 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	if n := countLines(t, addr); n != 20 {
		t.Fatalf("hijacked stream got %d lines of 20", n)
	}
}

// TestHold: a long poll that holds for longer than the write deadline still answers.
func TestHold(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpserve.Hold(w, r, time.Second)
		select {
		case <-time.After(700 * time.Millisecond):
		case <-r.Context().Done():
			t.Error("the poll's context ended while it held")
			return
		}
		io.WriteString(w, "late")
	})
	addr, _ := start(t, h, httpserve.Options{BodyTimeout: 200 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "late" {
		t.Fatalf("held answer %q, %v", b, err)
	}
}

// TestWrappedConnKeepsTCP: the connection a handler takes over is still a TCP connection to
// the system (SyscallConn), so writev and the like apply as without the cap.
func TestWrappedConnKeepsTCP(t *testing.T) {
	ok := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			ok <- false
			return
		}
		defer c.Close()
		_, isSys := c.(syscall.Conn)
		_, isTCP := c.(interface{ CloseWrite() error })
		ok <- isSys && isTCP
	})
	addr, _ := start(t, h, httpserve.Options{MaxConns: 10})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if !<-ok {
		t.Fatal("the hijacked connection is not a TCP connection to the system")
	}
}
