package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtbus/rtbus/internal/testutil"
)

// TestMain keeps every daemon the tests start off the user's files and default addresses: the
// HTTP bridge is off unless a test asks for it on a free port, and the default data directory
// and socket are in a temporary HOME (testutil.Isolate).
func TestMain(m *testing.M) { testutil.Main(m) }

func TestDaemonServesHTTPBridge(t *testing.T) {
	bin := buildDaemon(t)
	data := t.TempDir()
	cmd := exec.Command(bin, "-B", filepath.Join(t.TempDir(), "bus.sock"), "-http", "127.0.0.1:0", "-data-dir", data)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	re := regexp.MustCompile(`address=(http://[0-9.:]+)`)
	waitFor(t, "the bridge's address", func() bool { return re.MatchString(logs.String()) })
	base := re.FindStringSubmatch(logs.String())[1]
	if !strings.Contains(logs.String(), filepath.Join(data, "admin_token")) {
		t.Errorf("admin token location not logged:\n%s", logs)
	}
	post := func(path, auth, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := post("/users", "", `{"username":"ann","password":"pw","tenant_id":"acme"}`); code != 201 {
		t.Fatalf("signup: %d %v", code, m)
	}
	code, m := post("/login", "", `{"username":"ann","password":"pw"}`)
	tok, _ := m["jwt"].(string)
	if code != 200 || tok == "" {
		t.Fatalf("login: %d %v", code, m)
	}
	req, _ := http.NewRequest("GET", base+"/sse?token="+tok, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	if code, m := post("/insert", "Bearer "+tok, `{"event":"hello","data":{"n":1}}`); code != 200 {
		t.Fatalf("insert: %d %v", code, m)
	}
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != "event:hello" {
			t.Fatalf("first stream line %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no stream message")
	}
	// SIGTERM ends the stream and the daemon cleanly.
	cmd.Process.Signal(syscall.SIGTERM)
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs)
	}
	for _, f := range []string{"jwt_secret", "admin_token"} {
		if fi, err := os.Stat(filepath.Join(data, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", f, err)
		}
	}

	// Bad bridge configuration stops the daemon with an error naming it (same binary: one
	// build less).
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-http", "127.0.0.1:0", "-jwt-expiry", "soon"}, "jwt-expiry"},
		{[]string{"-http", "127.0.0.1:0", "-max-body", "0"}, "max-body"},
		{[]string{"-http", "127.0.0.1:0", "-jwt-alg", "none", "-data-dir", t.TempDir()}, "none"},
		{[]string{"-http", "127.0.0.1:0", "-jwt-alg", "RS256", "-jwt-key", "/nonexistent.pem", "-data-dir", t.TempDir()}, "jwt-key"},
		{[]string{"-http", "256.1.1.1:80", "-data-dir", t.TempDir()}, "http bridge"},
	} {
		cmd := exec.Command(bin, append(c.args, "-B", filepath.Join(t.TempDir(), "bus.sock"))...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: %v, output does not name %q:\n%s", c.args, err, c.want, out)
		}
	}
}
