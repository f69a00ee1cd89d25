package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/internal/testutil"
)

// selfSigned returns a server config with a certificate for 127.0.0.1 made up for the test,
// and a client config that trusts it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	c := testutil.SelfSigned(t)
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}}, &tls.Config{RootCAs: c.Pool}
}

// TestTLS: clients over TCP+TLS (tls://) and WebSocket+TLS (wss://) exchange frames with a
// client on a plain listener of the same server, whose one Config carries the certificate.
func TestTLS(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	b, addrs := testListen(t, Config{TLS: srvTLS}, "tls://127.0.0.1:0", "wss://127.0.0.1:0", "127.0.0.1:0")
	opts := DialOptions{Timeout: 5 * time.Second, TLS: cliTLS}
	dial := func(addr, name string) *Client {
		c, err := Dial(context.Background(), addr, name, opts)
		if err != nil {
			t.Fatalf("Dial %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	overTLS := dial(addrs[0], "tls")
	overWSS := dial(addrs[1]+"/bus", "wss")
	plain := dialTest(t, addrs[2], "plain")
	for _, c := range []*Client{overTLS, overWSS} {
		if err := c.Send(bus.QoSProcessed, "plain", []byte("hi from "+c.Name())); err != nil {
			t.Fatal(err)
		}
		if f := recvOne(t, plain); f.Sender != c.Name() || string(f.Payload) != "hi from "+c.Name() {
			t.Fatalf("plain got %+v", f)
		}
		if err := plain.Send(bus.QoSProcessed, c.Name(), []byte("back")); err != nil {
			t.Fatal(err)
		}
		if f := recvOne(t, c); f.Sender != "plain" || string(f.Payload) != "back" {
			t.Fatalf("%s got %+v", c.Name(), f)
		}
	}
	kinds := map[string]string{}
	for _, ci := range b.Clients() {
		kinds[ci.Name] = ci.Kind
	}
	if kinds["tls"] != bus.KindTCP || kinds["wss"] != bus.KindWebSocket {
		t.Fatalf("client kinds: %v", kinds)
	}

	// A client that does not trust the certificate, or speaks plain TCP to a TLS listener,
	// is refused; the listener goes on serving.
	if _, err := Dial(context.Background(), addrs[0], "untrusting", DialOptions{Timeout: 2 * time.Second}); err == nil {
		t.Fatal("a client without the root registered")
	}
	if _, err := Dial(context.Background(), strings.TrimPrefix(addrs[0], "tls://"), "plaintext", DialOptions{Timeout: 2 * time.Second}); err == nil {
		t.Fatal("a plain client registered on a TLS listener")
	}
	dial(addrs[0], "tls2")
}

// TestTLSAddressNeedsCertificate: tls:// and wss:// without Config.TLS are refused at Listen.
func TestTLSAddressNeedsCertificate(t *testing.T) {
	s := NewServer(bus.New())
	defer s.Close()
	for _, addr := range []string{"tls://127.0.0.1:0", "wss://127.0.0.1:0"} {
		if _, err := s.Listen(addr, Config{}); !errors.Is(err, ErrNoTLSConfig) {
			t.Errorf("Listen %s: %v, want ErrNoTLSConfig", addr, err)
		}
	}
}
