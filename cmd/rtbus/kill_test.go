package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// policyDaemon starts rtbusd on a fresh socket with the access policy text, without the HTTP
// bridge, and returns the socket.
func policyDaemon(t *testing.T, policy string) string {
	t.Helper()
	build(t)
	dir, err := os.MkdirTemp("", "rtbusd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, "aaa.json")
	if err := os.WriteFile(file, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bus.sock")
	cmd := exec.Command(bins.rtbusd, "-B", sock, "-aaa", file, "-http", "off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("rtbusd did not create its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClientKill(t *testing.T) {
	sock := policyDaemon(t, `{"op": {}, "plugin": {"broker": ["client.list"]}, "victim": {}}`)
	victim := exec.Command(bins.rtbus, "-b", sock, "-n", "victim", "listen")
	stderr, _ := victim.StderrPipe()
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer victim.Process.Kill()
	guard := time.AfterFunc(30*time.Second, func() { victim.Process.Kill() })
	defer guard.Stop()
	lines := bufio.NewReader(stderr)
	if line, err := lines.ReadString('\n'); err != nil || !strings.HasPrefix(line, "listening") {
		t.Fatalf("victim: %q %v", line, err)
	}

	r := rtbus(t, sock, "", "-n", "plugin", "client", "kill", "victim")
	if r.code != 1 || !strings.Contains(r.stderr, "access denied") || !strings.Contains(r.stderr, "rtbus.client.kill") {
		t.Errorf("kill by plugin: %+v", r)
	}
	if r := rtbus(t, sock, "", "-n", "op", "client", "list", "-f", "^victim$"); !strings.Contains(r.stdout, "victim") {
		t.Fatalf("victim gone after a refused kill: %+v", r)
	}

	want(t, rtbus(t, sock, "", "-n", "op", "client", "kill", "victim"), 0, "")
	// The victim's listen ends: its connection was closed.
	rest, _ := lines.ReadString(0)
	if err := victim.Wait(); err == nil {
		t.Errorf("listen of the killed client exited 0; stderr %q", rest)
	}
	if r := rtbus(t, sock, "", "-n", "op", "client", "list", "-f", "^victim$"); r.code != 0 || strings.Contains(r.stdout, "victim") {
		t.Errorf("victim still listed: %+v", r)
	}

	r = rtbus(t, sock, "", "-n", "op", "client", "kill", "nobody")
	if r.code != 1 || !strings.Contains(r.stderr, `no client named "nobody"`) {
		t.Errorf("kill nobody: %+v", r)
	}
	want(t, rtbus(t, sock, "", "-n", "op", "client", "kill"), 2, "")
	want(t, rtbus(t, sock, "", "-n", "op", "client", "kill", "a", "b"), 2, "")
}
