package main

import (
	"context"
	"errors"
	"fmt"
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

// startDaemon runs rtbusd with args (and no HTTP bridge) until the test ends, once it has
// said it started; it returns the daemon and its log.
func startDaemon(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(buildDaemon(t), append([]string{"-http", "off"}, args...)...)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	waitFor(t, "the start message", func() bool {
		return strings.Contains(logs.String(), "rtbusd started") || cmd.ProcessState != nil
	})
	return cmd, logs
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func dial(addr, name string) (*transport.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return transport.Dial(ctx, addr, name, transport.DialOptions{Timeout: 10 * time.Second})
}

func mustDial(t *testing.T, addr, name string) *transport.Client {
	t.Helper()
	c, err := dial(addr, name)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", addr, name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hup sends SIGHUP and waits for the daemon to log the n-th occurrence of what.
func hup(t *testing.T, cmd *exec.Cmd, logs *syncBuffer, what string, n int) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, what, func() bool { return strings.Count(logs.String(), what) >= n })
}

// disconnected waits for c's connection to end.
func disconnected(t *testing.T, c *transport.Client, who string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, err := c.Recv(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("%s is still connected", who)
			}
			return
		}
	}
}

// connected checks that c is still served: a message to itself comes back.
func connected(t *testing.T, c *transport.Client, who string) {
	t.Helper()
	if err := c.Send(bus.QoSProcessed, c.Name(), []byte("ping")); err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		f, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if f.Kind == bus.KindMessage && string(f.Payload) == "ping" {
			return
		}
	}
}

// TestSIGHUPReloadsPolicy: SIGHUP applies a changed policy file to the clients it changes
// (they are disconnected and connect again under the new rules), leaves the others alone,
// and keeps the old policy when the new file is bad.
func TestSIGHUPReloadsPolicy(t *testing.T) {
	dir := t.TempDir()
	policy, sock := filepath.Join(dir, "aaa.json"), filepath.Join(dir, "bus.sock")
	writeFile(t, policy, `{"a": {}, "b": {}}`)
	cmd, logs := startDaemon(t, "-aaa", policy, "-B", sock)
	a, b := mustDial(t, sock, "a"), mustDial(t, sock, "b")

	writeFile(t, policy, `{"a": {"deny_publish": true}, "b": {}, "c": {}}`)
	hup(t, cmd, logs, "access policy reloaded", 1)
	disconnected(t, a, "a, whose rules changed,")
	connected(t, b, "b, whose rules did not change")
	a = mustDial(t, sock, "a")
	if err := a.Publish(bus.QoSProcessed, "x", nil); !errors.Is(err, bus.ErrAccessDenied) {
		t.Errorf("a publishes after the reload: %v, want access denied", err)
	}
	mustDial(t, sock, "c") // added

	writeFile(t, policy, `{"a": {"hosts": []}`)
	hup(t, cmd, logs, "the previous one stays", 1)
	connected(t, b, "b after a bad file")
	if !strings.Contains(logs.String(), "aaa.json") {
		t.Errorf("the bad file is not named:\n%s", logs)
	}
	if _, err := dial(sock, "d"); !errors.Is(err, bus.ErrAccessDenied) {
		t.Errorf("d after a bad file: %v, want the old policy's refusal", err)
	}

	writeFile(t, policy, `{"a": {"deny_publish": true}, "c": {}}`)
	hup(t, cmd, logs, "access policy reloaded", 2)
	disconnected(t, b, "b, no longer in the policy,")
	if _, err := dial(sock, "b"); !errors.Is(err, bus.ErrAccessDenied) {
		t.Errorf("b after its removal: %v, want access denied", err)
	}
	connected(t, a, "a, unchanged by the last reload")
}

// TestPolicyPerListener: a listener with its own aaa= file applies it to its clients, the
// other listeners apply -aaa, and SIGHUP reloads both.
func TestPolicyPerListener(t *testing.T) {
	dir := t.TempDir()
	main, plugins := filepath.Join(dir, "main.json"), filepath.Join(dir, "plugins.json")
	sock, psock := filepath.Join(dir, "bus.sock"), filepath.Join(dir, "plugins.sock")
	writeFile(t, main, `{"app": {}, "plug": {}}`)
	writeFile(t, plugins, `{"plug": {"publish": ["plugins/#"], "broker": ["test"]}}`)
	tcp := freePort(t)
	cmd, logs := startDaemon(t, "-aaa", main, "-B", sock, "-B", psock+",aaa="+plugins+",mode=0666", "-B", tcp+",aaa="+plugins)
	if fi, err := os.Stat(psock); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("plugins socket mode: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("main socket mode: %v %v", fi.Mode(), err)
	}

	onMain := mustDial(t, sock, "plug")
	if err := onMain.Publish(bus.QoSProcessed, "anything", nil); err != nil {
		t.Errorf("plug on the main socket: %v", err)
	}
	onMain.Close()
	if _, err := dial(psock, "app"); !errors.Is(err, bus.ErrAccessDenied) {
		t.Errorf("app on the plugins socket: %v, want access denied", err)
	}
	if _, err := dial(tcp, "app"); !errors.Is(err, bus.ErrAccessDenied) {
		t.Errorf("app on the plugins TCP port: %v, want access denied", err)
	}
	app := mustDial(t, sock, "app")
	var plug *transport.Client
	waitFor(t, "plug to connect to the plugins socket", func() bool {
		var err error // busy while its connection to the main socket ends
		plug, err = dial(psock, "plug")
		return err == nil
	})
	t.Cleanup(func() { plug.Close() })
	if err := plug.Publish(bus.QoSProcessed, "plugins/x", nil); err != nil {
		t.Errorf("plug publishes under plugins/: %v", err)
	}
	if err := plug.Publish(bus.QoSProcessed, "app/x", nil); !errors.Is(err, bus.ErrAccessDenied) {
		t.Errorf("plug publishes outside plugins/: %v, want access denied", err)
	}

	// A reload of the plugins' file reaches the plugins' listeners only.
	writeFile(t, plugins, `{"plug": {"publish": ["plugins/#", "shared/#"], "broker": ["test"]}}`)
	writeFile(t, main, `{"app": {}, "plug": {}, "other": {}}`)
	hup(t, cmd, logs, "access policy reloaded", 2)
	disconnected(t, plug, "plug, whose plugin rules changed,")
	connected(t, app, "app, unchanged")
	plug = mustDial(t, psock, "plug")
	if err := plug.Publish(bus.QoSProcessed, "shared/x", nil); err != nil {
		t.Errorf("plug after the reload: %v", err)
	}
}

func TestBindSettings(t *testing.T) {
	for _, c := range []struct {
		v    string
		env  bool
		want string // the specs, or the error
	}{
		{"/a.sock", false, "/a.sock  0"},
		{"/a.sock,aaa=/p.json,mode=0600", false, "/a.sock /p.json 600"},
		{"/a.sock,/b.sock,aaa=/p.json", true, "/a.sock  0|/b.sock /p.json 0"},
		{"/a.sock,/b.sock", false, "one address per -B"},
		{"aaa=/p.json", true, "before any address"},
		{"/a.sock,aaa=", false, "empty value"},
		{"/a.sock,mode=rw", false, "octal file mode"},
		{"/a.sock,,/b.sock", true, "empty address"},
	} {
		specs, err := parseBind(c.v, c.env)
		var got []string
		for _, s := range specs {
			got = append(got, fmt.Sprintf("%s %s %o", s.addr, s.aaa, uint32(s.mode)))
		}
		text := strings.Join(got, "|")
		if err != nil {
			text = err.Error()
		}
		if !strings.Contains(text, c.want) {
			t.Errorf("parseBind(%q, %v) = %q, want %q", c.v, c.env, text, c.want)
		}
	}
}
