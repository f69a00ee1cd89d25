package main

import (
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBrokerArgs(t *testing.T) {
	fs := flag.NewFlagSet("rtbusd", flag.ContinueOnError)
	fs.String("B", "", "")
	fs.Bool("v", false, "")
	for _, c := range []struct {
		in, want []string
		notes    int
	}{
		{[]string{"--port", "8080", "--expiry", "60", "--secret", "s"},
			[]string{"-http", ":8080", "-jwt-expiry", "60", "-jwt-secret", "s"}, 3},
		{[]string{"--jwt_secret", "s", "--jwt_expiry=60", "--admin_token", "t", "--save_path", "/d", "--cert", "c.pem", "--key", "k.pem"},
			[]string{"-jwt-secret", "s", "-jwt-expiry", "60", "-admin-token", "t", "-data-dir", "/d", "-tls-cert", "c.pem", "-tls-key", "k.pem"}, 6},
		{[]string{"--connection", "https", "--cert-path", "c.pem"},
			[]string{"-tls-key", "./broker.rsa", "-tls-cert", "c.pem"}, 3},
		{[]string{"--connection", "http", "--key-path", "k.pem"}, nil, 2},
		// rtbus's own flags and their values pass through, values that look like flags too.
		{[]string{"-B", "--port", "-v", "--secret", "x", "rest", "--port"},
			[]string{"-B", "--port", "-v", "-jwt-secret", "x", "rest", "--port"}, 1},
	} {
		got, notes, err := brokerArgs(c.in, fs)
		if err != nil || !slices.Equal(got, c.want) || len(notes) != c.notes {
			t.Errorf("brokerArgs(%q) = %q, %d notices %q, %v; want %q, %d notices", c.in, got, len(notes), notes, err, c.want, c.notes)
		}
	}
	for _, bad := range [][]string{{"--port"}, {"--connection", "ftp"}} {
		if _, _, err := brokerArgs(bad, fs); err == nil {
			t.Errorf("brokerArgs(%q) accepted", bad)
		}
	}
}

// TestBrokerCommandLine: rtbusd started as broker was (its flags and SAVE_PATH) serves the
// HTTP bridge where broker would have, says what each flag is called in rtbus, and keeps
// broker's names out of -h.
func TestBrokerCommandLine(t *testing.T) {
	bin := buildDaemon(t)
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	for _, name := range []string{"-port", "-secret", "-jwt_secret", "-admin_token", "-save_path", "-connection"} {
		if strings.Contains(string(out), "  "+name+" ") || strings.Contains(string(out), "  "+name+"\n") {
			t.Errorf("-h lists broker's %s", name)
		}
	}

	dir := t.TempDir()
	port := freePort(t)
	_, p, _ := strings.Cut(port, ":")
	cmd := exec.Command(bin, "-B", filepath.Join(dir, "bus.sock"), "-internal", "off", "-ntp", "off",
		"--port", p, "--origin", "http://localhost:3000", "--expiry", "60", "--secret", "s3cret", "--admin_token", "letmein")
	cmd.Env = append(os.Environ(), "SAVE_PATH="+filepath.Join(dir, "broker_data"))
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	waitFor(t, "the start message", func() bool {
		return strings.Contains(logs.String(), "rtbusd started") || cmd.ProcessState != nil
	})
	for _, want := range []string{
		"--port is broker's flag; rtbus's is -http :" + p,
		"--secret is broker's flag; rtbus's is -jwt-secret\"",
		"--expiry is broker's flag; rtbus's is -jwt-expiry 60",
		"--admin_token is broker's flag; rtbus's is -admin-token\"",
		"SAVE_PATH is broker's variable",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no notice %q in:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "letmein") {
		t.Errorf("a secret is in the log:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "broker_data", "db")); err != nil {
		t.Errorf("the store is not under SAVE_PATH: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post("http://127.0.0.1:"+p+"/login", "application/json", strings.NewReader(`{"username":"nobody","password":"x"}`))
	if err != nil {
		t.Fatalf("the bridge is not on broker's --port: %v\n%s", err, logs)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login of nobody: %d", resp.StatusCode)
	}
}
