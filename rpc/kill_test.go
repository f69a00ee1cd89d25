package rpc_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
	"github.com/rtbus/rtbus/transport"
)

// TestClientKillOverSocket: rtbus.client.kill ends the named client's connection; a caller
// whose policy leaves the method out is refused, and an unknown name is a clear error.
func TestClientKillOverSocket(t *testing.T) {
	policy, err := aaa.Load(strings.NewReader(`{
  "op": {},
  "plugin": {"broker": ["test", "client.list"]},
  "victim": {}
}`))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "rpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b := bus.New()
	srv := transport.NewServer(b)
	addr := filepath.Join(dir, "bus.sock")
	if _, err := srv.Listen(addr, transport.Config{Timeout: 5 * time.Second, Policy: policy, UnixMode: 0o600}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		srv.Close()
	})
	serveBroker(t, &env{b: b})
	e := &env{b: b, addr: addr}
	op, plugin := e.rpc(t, "op"), e.rpc(t, "plugin")
	victim := e.conn(t, "victim")
	e.conn(t, "victim%%2")
	ctx := ctxT(t)
	kill := func(c *rpc.Client, name string) error {
		p, _ := rpc.Marshal(map[string]string{"name": name})
		_, err := c.Call(ctx, bus.BrokerName, rpc.MethodClientKill, p)
		return err
	}

	if _, err := plugin.Call(ctx, bus.BrokerName, "test", nil); err != nil {
		t.Fatalf("plugin test: %v", err)
	}
	err = kill(plugin, "victim")
	if !errors.Is(err, bus.ErrAccessDenied) || !strings.Contains(err.Error(), rpc.MethodClientKill) {
		t.Errorf("plugin kill: %v, want access denied naming the method", err)
	}
	if _, ok := b.ClientRules("victim"); !ok {
		t.Fatal("a refused kill disconnected the victim")
	}

	if err := kill(op, "victim"); err != nil {
		t.Fatalf("op kill: %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		if _, err := victim.Recv(rctx); err != nil {
			if rctx.Err() != nil {
				t.Fatal("the killed client's connection did not end")
			}
			break
		}
	}
	for _, n := range []string{"victim", "victim%%2"} {
		if _, ok := b.ClientRules(n); ok {
			t.Errorf("%s still registered", n)
		}
	}

	err = kill(op, "nobody")
	if !errors.Is(err, bus.ErrNotRegistered) || !strings.Contains(err.Error(), `no client named "nobody"`) {
		t.Errorf("kill nobody: %v", err)
	}
	for _, p := range [][]byte{nil, {0x80}, mp(0x81, "name", 0x01), mp(0x81, "who", "x")} {
		if _, err := op.Call(ctx, bus.BrokerName, rpc.MethodClientKill, p); !errors.Is(err, &rpc.Error{Code: rpc.CodeInvalidParams}) {
			t.Errorf("kill(% x): %v, want invalid params", p, err)
		}
	}
	if err := kill(op, bus.BrokerName); !errors.Is(err, &rpc.Error{Code: rpc.CodeInvalidParams}) {
		t.Errorf("kill .broker: %v", err)
	}
}
