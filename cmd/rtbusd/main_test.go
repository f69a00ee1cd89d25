package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildDaemon builds rtbusd into a temporary directory, so the tests run the real binary.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rtbusd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer lets the test read what the daemon has logged so far without racing the copier.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDaemonStopsCleanlyOnSignal(t *testing.T) {
	bin := buildDaemon(t)
	policy := filepath.Join(t.TempDir(), "aaa.json")
	if err := os.WriteFile(policy, []byte(`{"test": {"hosts": ["127.0.0.0/8"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "-aaa", policy)
			logs := &syncBuffer{}
			cmd.Stderr = logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the start message", func() bool { return strings.Contains(logs.String(), "rtbusd started") })
			if !strings.Contains(logs.String(), "access policy loaded") {
				t.Errorf("policy file not reported as loaded:\n%s", logs)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit: %v\n%s", err, logs)
			}
			if !strings.Contains(logs.String(), "shutting down") {
				t.Errorf("no shutdown message:\n%s", logs)
			}
		})
	}
}

func TestDaemonRejectsBadConfiguration(t *testing.T) {
	bin := buildDaemon(t)
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"missing policy file", []string{"-aaa", filepath.Join(t.TempDir(), "none.json")}, nil, "none.json"},
		{"bad log level", []string{"-log-level", "loud"}, nil, "log-level"},
		{"bad env", nil, []string{"RTBUS_QUEUE_SIZE=many"}, "RTBUS_QUEUE_SIZE"},
		{"stray argument", []string{"extra"}, nil, "unexpected argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, c.args...)
			cmd.Env = append(os.Environ(), c.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("exit 0, want failure; output:\n%s", out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("output does not name %q:\n%s", c.want, out)
			}
		})
	}
}
