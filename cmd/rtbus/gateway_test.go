package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/internal/testutil"
)

// gatewayDaemon starts rtbusd with the HTTP bridge and the internal API on free ports and
// returns their base URLs; extra are more flags.
func gatewayDaemon(t *testing.T, extra ...string) (public, internal string) {
	t.Helper()
	build(t)
	dir, err := os.MkdirTemp("", "rtbusd")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.rtbusd, append([]string{"-B", filepath.Join(dir, "bus.sock"), "-http", "127.0.0.1:0",
		"-internal", "127.0.0.1:0", "-data-dir", filepath.Join(dir, "data"), "-admin-token", "adm"}, extra...)...)
	logs := &testutil.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait(); os.RemoveAll(dir) })
	pub := regexp.MustCompile(`"http bridge listening" address=(http://[0-9.:]+)`)
	in := regexp.MustCompile(`"internal API listening" address=(http://[0-9.:]+)`)
	deadline := time.Now().Add(20 * time.Second)
	for !pub.MatchString(logs.String()) || !in.MatchString(logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("rtbusd did not start:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return pub.FindStringSubmatch(logs.String())[1], in.FindStringSubmatch(logs.String())[1]
}

func post(t *testing.T, url, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

// sseLines opens a stream and returns its lines.
func sseLines(t *testing.T, url string) (<-chan string, func()) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines, func() { resp.Body.Close() }
}

func expectLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if l == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within 10 s", want)
		}
	}
}

func TestGatewayCommands(t *testing.T) {
	pub, in := gatewayDaemon(t)
	post(t, pub+"/users", `{"username":"ann","password":"pw","tenant_id":"acme"}`)
	tok1, _ := post(t, pub+"/login", `{"username":"ann","password":"pw"}`)["jwt"].(string)
	tok2, _ := post(t, pub+"/login", `{"username":"ann","password":"pw"}`)["jwt"].(string)
	s1, close1 := sseLines(t, pub+"/sse?token="+tok1)
	defer close1()
	s2, close2 := sseLines(t, pub+"/sse?token="+tok2)
	defer close2()

	gw := func(stdin string, args ...string) result {
		t.Helper()
		return rtbus(t, "unused.sock", stdin, append([]string{"gateway"}, args...)...)
	}
	r := gw("", "who", "-a", in, "-token", "adm")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || strings.Count(r.stdout, " ann ") != 2 || !strings.Contains(r.stdout, "acme") {
		t.Fatalf("who: %+v", r)
	}
	want(t, gw("", "push", "-a", in, "-token", "adm", "-user", "ann", "acme", "hello", `{"n":1}`), 0, "delivered to 2 streams\n")
	expectLine(t, s1, "event:hello")
	expectLine(t, s2, "event:hello")
	want(t, gw(`"from stdin"`, "push", "-a", in, "-token", "adm", "acme", "all", "-"), 0, "delivered to 2 streams\n")
	expectLine(t, s1, "event:all")

	// Kill the first session: its stream gets session_killed, the other lives on.
	jti := sessionID(t, tok1)
	want(t, gw("", "kill", "-a", in, "-token", "adm", jti), 0, "")
	expectLine(t, s1, "event:session_killed")
	r = gw("", "who", "-a", in, "-token", "adm", "-user", "ann", "-json")
	var conns []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &conns); err != nil || len(conns) != 1 || conns[0]["session"] != sessionID(t, tok2) {
		t.Fatalf("who after the kill: %+v (%v)", r, err)
	}
	want(t, gw("", "kill", "-a", in, "-token", "adm", "-undo", jti), 0, "")

	// Errors: a wrong token fails (1), none is a usage error (2), no daemon cannot connect (3).
	r = gw("", "who", "-a", in, "-token", "wrong")
	if r.code != 1 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("wrong token: %+v", r)
	}
	want(t, gw("", "who", "-a", in, "-token", ""), 2, "")
	want(t, gw("", "push", "-a", in, "-token", "adm", "acme"), 2, "")
	want(t, gw("", "push", "-a", in, "-token", "adm", "acme", "e", "not json"), 2, "")
	want(t, gw("", "who", "-a", "127.0.0.1:1", "-token", "adm"), 3, "")
	want(t, gw("", "nothing"), 2, "")
}

func sessionID(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ JTI string }
	json.Unmarshal(b, &c)
	return c.JTI
}
