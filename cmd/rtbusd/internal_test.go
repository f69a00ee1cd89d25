package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// gateway is a running rtbusd with the bridge and the internal API on free ports.
type gateway struct {
	cmd            *exec.Cmd
	logs           *syncBuffer
	public, intern string
}

func startGateway(t *testing.T, bin, data string, args ...string) *gateway {
	t.Helper()
	args = append([]string{"-B", filepath.Join(t.TempDir(), "bus.sock"), "-http", "127.0.0.1:0", "-internal", "127.0.0.1:0",
		"-data-dir", data, "-admin-token", "secret-admin"}, args...)
	d := &gateway{cmd: exec.Command(bin, args...), logs: &syncBuffer{}}
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cmd.Process.Kill(); d.cmd.Wait() })
	pub := regexp.MustCompile(`"http bridge listening" address=(http://[0-9.:]+)`)
	in := regexp.MustCompile(`"internal API listening" address=(http://[0-9.:]+)`)
	waitFor(t, "the listeners' addresses", func() bool {
		return pub.MatchString(d.logs.String()) && in.MatchString(d.logs.String())
	})
	d.public = pub.FindStringSubmatch(d.logs.String())[1]
	d.intern = in.FindStringSubmatch(d.logs.String())[1]
	return d
}

func (d *gateway) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, d.logs)
	}
}

func call(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDaemonInternalAPI(t *testing.T) {
	bin := buildDaemon(t)
	data := t.TempDir()
	d := startGateway(t, bin, data)
	const admin = "Bearer secret-admin"
	for _, base := range []string{d.public, d.intern} {
		for _, p := range []string{"/healthz", "/readyz"} {
			if code, body := call(t, "GET", base+p, "", ""); code != 200 {
				t.Fatalf("%s%s: %d %s", base, p, code, body)
			}
		}
	}
	if code, _ := call(t, "GET", d.intern+"/v1/connections", "", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := call(t, "GET", d.intern+"/v1/connections", "Bearer nope", ""); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _ := call(t, "GET", d.public+"/v1/connections", admin, ""); code != 404 {
		t.Fatalf("internal route on the public listener: %d", code)
	}
	if code, body := call(t, "POST", d.public+"/users", "", `{"username":"ann","password":"pw","tenant_id":"acme"}`); code != 201 {
		t.Fatalf("signup: %d %s", code, body)
	}
	_, body := call(t, "POST", d.public+"/login", "", `{"username":"ann","password":"pw"}`)
	var login struct{ JWT string }
	json.Unmarshal([]byte(body), &login)
	claims := strings.Split(login.JWT, ".")
	if len(claims) != 3 {
		t.Fatalf("login: %s", body)
	}
	code, body := call(t, "POST", d.intern+"/v1/events", admin, `{"tenant_id":"acme","user":"ann","event":"e","data":1}`)
	if code != 200 || !strings.Contains(body, `"event":"e"`) {
		t.Fatalf("insert on behalf: %d %s", code, body)
	}
	// Kill the session through the internal API: refused, also after a restart.
	_, body = call(t, "GET", d.public+"/verify", "Bearer "+login.JWT, "")
	jti := sessionOf(t, login.JWT)
	if code, body := call(t, "POST", d.intern+"/v1/session-blacklist", admin, `{"session_id":"`+jti+`","validity_seconds":3600}`); code != 201 {
		t.Fatalf("blacklist: %d %s", code, body)
	}
	if code, _ := call(t, "GET", d.public+"/verify", "Bearer "+login.JWT, ""); code != 401 {
		t.Fatalf("killed session: %d", code)
	}
	d.stop(t)
	d = startGateway(t, bin, data)
	if code, _ := call(t, "GET", d.public+"/verify", "Bearer "+login.JWT, ""); code != 401 {
		t.Fatalf("killed session after a restart: %d", code)
	}
	if code, _ := call(t, "DELETE", d.intern+"/v1/session-blacklist/"+jti, admin, ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := call(t, "GET", d.public+"/verify", "Bearer "+login.JWT, ""); code != 200 {
		t.Fatalf("revived session: %d", code)
	}
	d.stop(t)

	// A public tenant, and the default one.
	d = startGateway(t, bin, t.TempDir(), "-public-tenants", "news,other", "-default-tenant", "news")
	if code, body := call(t, "POST", d.public+"/users", "", `{"username":"ann","password":"pw"}`); code != 201 {
		t.Fatalf("signup in the default tenant: %d %s", code, body)
	}
	if code, _ := call(t, "GET", d.public+"/public/events/acme", "", ""); code != 404 {
		t.Fatalf("private tenant's public stream: %d", code)
	}
	resp, err := http.Get(d.public + "/events")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("anonymous /events: %v %v", resp, err)
	}
	resp.Body.Close()
	d.stop(t)

	// -h documents the flags.
	cmd := exec.Command(bin, "-h")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "-internal") || !strings.Contains(string(out), "-public-tenants") || !strings.Contains(string(out), "-default-tenant") {
		t.Fatalf("-h does not document -internal:\n%s", out)
	}
}

func sessionOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64URL(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ JTI string }
	json.Unmarshal(b, &c)
	if c.JTI == "" {
		t.Fatalf("no jti in %s", b)
	}
	return c.JTI
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
