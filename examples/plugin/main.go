// Command plugin shows the second way into rtbus: programs that connect to the broker over a
// socket, as BUS/RT plugins in any language do. One client, example.greeter, serves the RPC
// method "greet" and prints the publications it is subscribed to; another, example.caller,
// calls it, publishes, and asks .broker who is connected.
//
// With -b it connects to a running broker: go run ./cmd/rtbusd, then
// go run ./examples/plugin -b /tmp/rtbus.sock -serve (the socket rtbusd logs at start:
// $XDG_RUNTIME_DIR/rtbus.sock where that is set), and rtbus rpc call example.greeter greet
// name=you. Without -b it starts a broker of its own on a temporary UNIX socket, so that it
// runs alone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
	"github.com/rtbus/rtbus/transport"
)

func main() {
	addr := flag.String("b", "", "broker address (a UNIX socket path, host:port, ws://…); empty: start one")
	serve := flag.Bool("serve", false, "after the demonstration, keep serving greet until interrupted")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *addr, *serve); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, w io.Writer, addr string, serve bool) error {
	if addr == "" {
		dir, err := os.MkdirTemp("", "rtbus-plugin")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		addr = filepath.Join(dir, "bus.sock")
		b := bus.New()
		defer b.Close()
		if _, err := rpc.ServeBroker(b); err != nil {
			return err
		}
		srv := transport.NewServer(b)
		defer srv.Close()
		if _, err := srv.Listen(addr, transport.Config{UnixMode: 0o600}); err != nil {
			return err
		}
		fmt.Fprintln(w, "started a broker on a temporary UNIX socket")
	}

	// The greeter: an RPC server over a socket connection.
	conn, err := transport.Dial(ctx, addr, "example.greeter", transport.DialOptions{})
	if err != nil {
		return fmt.Errorf("greeter: %w", err)
	}
	greeter := rpc.New(conn, rpc.Options{})
	defer greeter.Close()
	greeter.Handle("greet", func(_ context.Context, r rpc.Request) ([]byte, error) {
		var p struct {
			Name string `msgpack:"name"`
		}
		if err := rpc.Unmarshal(r.Params, &p); err != nil || p.Name == "" {
			return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Data: []byte("want {name: string}")}
		}
		return rpc.Marshal("hello, " + p.Name)
	})
	var mu sync.Mutex // w is shared by the greeter's frame handler and this goroutine
	got := make(chan struct{}, 1)
	greeter.HandleFrame(func(f bus.Frame) {
		if f.Kind != bus.KindPublish || f.Sender == bus.BrokerName {
			return
		}
		mu.Lock()
		fmt.Fprintf(w, "greeter got %s from %s: %s\n", f.Topic, f.Sender, f.Payload)
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if err := conn.Subscribe(bus.QoSProcessed, "example/news/#"); err != nil {
		return err
	}

	// The caller: calls, publishes, asks the broker.
	conn2, err := transport.Dial(ctx, addr, "example.caller", transport.DialOptions{})
	if err != nil {
		return fmt.Errorf("caller: %w", err)
	}
	caller := rpc.New(conn2, rpc.Options{})
	defer caller.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	hello, err := rpc.CallValue[string](cctx, caller, "example.greeter", "greet", map[string]string{"name": "world"})
	if err != nil {
		return err
	}
	say(&mu, w, "caller got: %s\n", hello)

	_, err = caller.Call(cctx, "example.greeter", "greet", nil)
	var rerr *rpc.Error
	if errors.As(err, &rerr) {
		say(&mu, w, "caller got error %d: %s\n", rerr.Code, rerr.Data)
	}
	_, err = caller.Call(cctx, "example.nobody", "greet", nil)
	say(&mu, w, "calling a client that is not there: %v\n", err)

	if err := conn2.Publish(bus.QoSProcessed, "example/news/1", []byte("rtbus speaks BUS/RT")); err != nil {
		return err
	}
	select {
	case <-got:
	case <-cctx.Done():
		return cctx.Err()
	}

	var clients struct {
		Clients []struct {
			Name string `msgpack:"name"`
			Kind string `msgpack:"kind"`
		} `msgpack:"clients"`
	}
	res, err := caller.Call(cctx, bus.BrokerName, "client.list", nil)
	if err != nil {
		return err
	}
	if err := rpc.Unmarshal(res, &clients); err != nil {
		return err
	}
	sort.Slice(clients.Clients, func(i, j int) bool { return clients.Clients[i].Name < clients.Clients[j].Name })
	for _, c := range clients.Clients {
		if c.Name == "example.greeter" || c.Name == "example.caller" {
			say(&mu, w, ".broker lists %s (%s)\n", c.Name, c.Kind)
		}
	}

	if serve {
		say(&mu, w, "serving example.greeter greet until interrupted\n")
		<-ctx.Done()
	}
	return nil
}

func say(mu *sync.Mutex, w io.Writer, format string, args ...any) {
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(w, format, args...)
}
