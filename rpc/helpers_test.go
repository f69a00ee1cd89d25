package rpc_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
	"github.com/rtbus/rtbus/transport"
)

// env is a broker and a way to connect clients to it: in-process or over a UNIX socket.
type env struct {
	b    *bus.Broker
	addr string // the socket; "" in-process
}

func (e *env) conn(t testing.TB, name string) bus.Conn {
	t.Helper()
	if e.addr == "" {
		c, err := e.b.RegisterClient(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, e.addr, name, transport.DialOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) rpc(t testing.TB, name string) *rpc.Client {
	t.Helper()
	c := rpc.New(e.conn(t, name), rpc.Options{})
	t.Cleanup(func() { c.Close() })
	return c
}

func inProcess(t testing.TB) *env {
	b := bus.New()
	t.Cleanup(func() { b.Close() })
	return &env{b: b}
}

// overSocket serves a fresh broker on a UNIX socket in a short temporary directory (socket
// paths are limited to about 100 bytes, which t.TempDir can exceed).
func overSocket(t testing.TB) *env {
	dir, err := os.MkdirTemp("", "rpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b := bus.New()
	srv := transport.NewServer(b)
	addr := filepath.Join(dir, "bus.sock")
	if _, err := srv.Listen(addr, transport.Config{Timeout: 5 * time.Second, UnixMode: 0o600}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		srv.Close()
	})
	return &env{b: b, addr: addr}
}

// both runs f in-process and over a UNIX socket.
func both(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("inprocess", func(t *testing.T) { f(t, inProcess(t)) })
	t.Run("unix", func(t *testing.T) { f(t, overSocket(t)) })
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
