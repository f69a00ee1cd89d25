package transport

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

// TestWebSocket: a socket client over WebSocket and one over TCP exchange frames through the
// same broker, and client.list reports the WebSocket peer.
func TestWebSocket(t *testing.T) {
	b, addrs := testListen(t, Config{}, "ws://127.0.0.1:0", "127.0.0.1:0")
	ws := dialTest(t, addrs[0]+"/", "web")
	tcp := dialTest(t, addrs[1], "tcp")
	if err := ws.Subscribe(bus.QoSProcessed, "t/#"); err != nil {
		t.Fatal(err)
	}
	if err := tcp.Publish(bus.QoSProcessed, "t/1", []byte("to web")); err != nil {
		t.Fatal(err)
	}
	if f := recvOne(t, ws); f.Sender != "tcp" || f.Topic != "t/1" || string(f.Payload) != "to web" {
		t.Fatalf("web got %+v", f)
	}
	big := make([]byte, 200<<10) // several WebSocket messages' worth, one frame
	if err := ws.Send(bus.QoSProcessed, "tcp", big); err != nil {
		t.Fatal(err)
	}
	if f := recvOne(t, tcp); f.Sender != "web" || len(f.Payload) != len(big) {
		t.Fatalf("tcp got %d bytes from %s", len(f.Payload), f.Sender)
	}
	var found bool
	for _, ci := range b.Clients() {
		if ci.Name == "web" {
			found = ci.Kind == bus.KindWebSocket && ci.Source != "" && "ws://"+ci.Port == addrs[0]
		}
	}
	if !found {
		t.Fatalf("web client not listed as a WebSocket peer: %+v", b.Clients())
	}
	ws.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ws.Recv(ctx); err == nil {
		t.Fatal("Recv after Close returned a frame")
	}
}

// TestWebSocketHostCheck: the policy's hosts apply to a WebSocket peer's address, taken from
// its HTTP request.
func TestWebSocketHostCheck(t *testing.T) {
	m := aaa.NewMap()
	m.Set("far", aaa.Policy{Hosts: []string{"10.0.0.0/8"}})
	m.Set("near", aaa.Policy{Hosts: []string{"127.0.0.0/8"}})
	_, addrs := testListen(t, Config{Policy: m}, "ws://127.0.0.1:0")
	if _, err := Dial(context.Background(), addrs[0], "far", DialOptions{Timeout: 5 * time.Second}); !errors.Is(err, bus.ErrAccessDenied) {
		t.Fatalf("far: %v, want ErrAccessDenied", err)
	}
	dialTest(t, addrs[0], "near")
}
