package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/transport"
)

// daemon is a running rtbusd.
type daemon struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{} // closed once it has exited; then err is why
	err    error
}

// runDaemon starts rtbusd with args (the HTTP bridge off) and waits for it to serve; the
// test kills it if it still runs at the end.
func runDaemon(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin, append([]string{"-http", "off"}, args...)...), logs: &syncBuffer{}, exited: make(chan struct{})}
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.exited
	})
	waitFor(t, "the start message", func() bool { return strings.Contains(d.logs.String(), "rtbusd started") })
	return d
}

// stop sends sig and waits for the daemon's exit, which must be clean for SIGTERM.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30 s after %v\n%s", sig, d.logs)
	}
	if sig == syscall.SIGTERM && d.err != nil {
		t.Fatalf("exit: %v\n%s", d.err, d.logs)
	}
}

// assertServes connects a client on addr and has .broker answer it.
func assertServes(t *testing.T, addr, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, addr, name, transport.DialOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	defer c.Close()
	if err := c.Publish(bus.QoSProcessed, "probe", nil); err != nil { // acknowledged
		t.Fatalf("%s: publish: %v", addr, err)
	}
}

// TestDaemonRefusesLiveSocket: a second rtbusd on the socket path of a running one exits
// non-zero saying "address in use", and the first keeps serving on its socket file.
func TestDaemonRefusesLiveSocket(t *testing.T) {
	bin := buildDaemon(t)
	sock := filepath.Join(t.TempDir(), "bus.sock")
	first := runDaemon(t, bin, "-B", sock)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // one that serves is killed
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-http", "off", "-B", sock).CombinedOutput()
	if code := exitCode(t, err); code == 0 || !strings.Contains(string(out), "address in use") {
		t.Fatalf("second daemon: exit %d, output:\n%s", code, out)
	}
	assertServes(t, sock, "after.second")
	first.stop(t, syscall.SIGTERM)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("own socket file left behind: %v", err)
	}
}

// TestDaemonReplacesStaleSocket: a socket file nobody serves, left by a killed daemon, is
// replaced.
func TestDaemonReplacesStaleSocket(t *testing.T) {
	bin := buildDaemon(t)
	sock := filepath.Join(t.TempDir(), "bus.sock")
	runDaemon(t, bin, "-B", sock).stop(t, syscall.SIGKILL)
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no stale socket file after SIGKILL: %v", err)
	}
	d := runDaemon(t, bin, "-B", sock)
	assertServes(t, sock, "on.stale.path")
	d.stop(t, syscall.SIGTERM)
}

// TestDaemonLeavesReplacedSocket: a daemon whose socket file was removed and bound by
// another daemon leaves that file alone when it exits.
func TestDaemonLeavesReplacedSocket(t *testing.T) {
	bin := buildDaemon(t)
	sock := filepath.Join(t.TempDir(), "bus.sock")
	old := runDaemon(t, bin, "-B", sock)
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	runDaemon(t, bin, "-B", sock)
	old.stop(t, syscall.SIGTERM)
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("the old daemon removed the new one's socket file: %v", err)
	}
	assertServes(t, sock, "on.new.daemon")
}

// exitCode is a finished command's exit code.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return ee.ExitCode()
}
