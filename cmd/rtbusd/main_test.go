package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/internal/rtbusdproc"
	"github.com/rtbus/rtbus/internal/testutil"
	"github.com/rtbus/rtbus/transport"
)

// buildDaemon returns the path of rtbusd built from this module, so the tests run the real
// binary.
func buildDaemon(t *testing.T) string { return testutil.Daemon(t) }

// syncBuffer lets the test read what the daemon has logged so far without racing the copier.
type syncBuffer = testutil.Buffer

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
			cmd := exec.Command(bin, "-aaa", policy, "-B", filepath.Join(t.TempDir(), "bus.sock"))
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
		{"bad socket mode", []string{"-socket-mode", "rw"}, nil, "socket-mode"},
		{"no room for incomplete frames", []string{"-incomplete-limit", "0"}, nil, "-incomplete-limit 0"},
		{"wss without a certificate", []string{"-B", "wss://127.0.0.1:0"}, nil, "-tls-cert"},
		{"tls without a certificate", []string{"-B", "tls://127.0.0.1:0"}, nil, "-tls-cert"},
		{"certificate without key", []string{"-tls-cert", "cert.pem"}, nil, "-tls-key"},
		{"missing certificate", []string{"-tls-cert", "none.pem", "-tls-key", "none.key"}, nil, "none.pem"},
		{"unusable address", []string{"-B", "256.0.0.1:1"}, nil, "listen 256.0.0.1:1"},
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

// TestDaemonHelpAndBadFlags: -h is help asked for (exit 0), an unknown flag a usage mistake
// (exit 2, as any Go command), each with the flags listed once.
func TestDaemonHelpAndBadFlags(t *testing.T) {
	bin := buildDaemon(t)
	for _, c := range []struct {
		args []string
		code int
	}{{[]string{"-h"}, 0}, {[]string{"-bogus"}, 2}} {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || strings.Count(string(out), "-queue-size") != 1 || strings.Contains(string(out), "rtbusd: flag") {
			t.Errorf("rtbusd %v: exit %d, want %d; output:\n%s", c.args, code, c.code, out)
		}
	}
}

// TestDaemonServesAndWarnsOnShutdown: a BUS/RT client connects over the UNIX socket, and on
// SIGTERM receives the shutdown warning before the connection closes; the socket file goes.
func TestDaemonServesAndWarnsOnShutdown(t *testing.T) {
	bin := buildDaemon(t)
	sock := filepath.Join(t.TempDir(), "bus.sock")
	cmd := exec.Command(bin, "-B", sock, "-B", "127.0.0.1:0", "-B", "ws://127.0.0.1:0")
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "the start message", func() bool { return strings.Contains(logs.String(), "rtbusd started") })

	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second)) // only keeps a broken test from hanging
	expect := func(want ...byte) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(nc, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got % x (%v), want % x", got, err, want)
		}
	}
	expect(0xEB, 0x01, 0x00)
	nc.Write([]byte{0xEB, 0x01, 0x00})
	expect(0x01)
	nc.Write([]byte{6, 0, 'p', 'l', 'u', 'g', 'i', 'n'})
	expect(0x01)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Pings may come first; then the publication on .broker/warn, then the end.
	var warned bool
	for {
		var hdr [6]byte
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			break
		}
		body := make([]byte, binary.LittleEndian.Uint32(hdr[1:5]))
		if _, err := io.ReadFull(nc, body); err != nil {
			t.Fatal(err)
		}
		if hdr[0] == 0x01 && bytes.HasPrefix(body, []byte(".broker\x00.broker/warn\x00")) {
			warned = bytes.Contains(body, []byte("shutdown"))
		}
	}
	if !warned {
		t.Error("no shutdown warning before the connection closed")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
}

// TestDaemonServesTLS: with -tls-cert and -tls-key (here from the environment), Go clients
// connect over tls:// and wss:// and exchange a message.
func TestDaemonServesTLS(t *testing.T) {
	bin := buildDaemon(t)
	dir := t.TempDir()
	roots := writeSelfSigned(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	cmd := exec.Command(bin, "-B", filepath.Join(dir, "bus.sock"), "-B", "tls://127.0.0.1:0", "-B", "wss://127.0.0.1:0")
	cmd.Env = append(os.Environ(), "RTBUS_TLS_CERT="+filepath.Join(dir, "cert.pem"), "RTBUS_TLS_KEY="+filepath.Join(dir, "key.pem"))
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	waitFor(t, "the start message", func() bool { return strings.Contains(logs.String(), "rtbusd started") })
	// The log names the ports the system chose for :0.
	tlsAddr, wssAddr := listenAddr(t, logs, "tls://"), listenAddr(t, logs, "wss://")
	opts := transport.DialOptions{Timeout: 10 * time.Second, TLS: &tls.Config{RootCAs: roots}}
	a, err := transport.Dial(context.Background(), tlsAddr, "a", opts)
	if err != nil {
		t.Fatalf("dial %s: %v\n%s", tlsAddr, err, logs)
	}
	defer a.Close()
	b, err := transport.Dial(context.Background(), wssAddr, "b", opts)
	if err != nil {
		t.Fatalf("dial %s: %v\n%s", wssAddr, err, logs)
	}
	defer b.Close()
	if err := a.Send(bus.QoSProcessed, "b", []byte("over TLS")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := b.Recv(ctx)
	if err != nil || f.Sender != "a" || string(f.Payload) != "over TLS" {
		t.Fatalf("b got %+v, %v", f, err)
	}
}

// listenAddr returns the address of the bus listener whose address starts with scheme, as the
// daemon logged it (with the port it was given, or the one chosen for :0).
func listenAddr(t *testing.T, logs *syncBuffer, scheme string) string {
	t.Helper()
	m := regexp.MustCompile(`msg=listening address=(` + regexp.QuoteMeta(scheme) + `[^ \n]+)`).FindStringSubmatch(logs.String())
	if m == nil || strings.HasSuffix(m[1], ":0") {
		t.Fatalf("no %s listener with its port in the log:\n%s", scheme, logs)
	}
	return m[1]
}

// freePort returns a loopback host:port that was free a moment ago, outside the ports the
// system hands out by itself (see rtbusdproc.FreePorts).
func freePort(t *testing.T) string {
	t.Helper()
	ports, err := rtbusdproc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key as PEM files and returns
// a pool that trusts it.
func writeSelfSigned(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	c := testutil.SelfSigned(t)
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return c.Pool
}
