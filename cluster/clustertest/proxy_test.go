package clustertest_test

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/rtbus/rtbus/cluster/clustertest"
)

// echoServer answers every line with itself until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(l))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip dials addr, sends a line and reads it back; any failure is returned.
func roundTrip(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if err := echo(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func echo(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	l, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && l != "ping\n" {
		err = fmt.Errorf("echoed %q", l)
	}
	return err
}

func TestProxyCutAndHeal(t *testing.T) {
	p := clustertest.NewProxy(t, echoServer(t))
	c, err := roundTrip(p.Addr())
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	defer c.Close()

	p.Cut()
	if err := echo(c); err == nil {
		t.Fatal("a connection survived Cut")
	}
	if c2, err := roundTrip(p.Addr()); err == nil {
		c2.Close()
		t.Fatal("a new connection went through a cut proxy")
	}

	p.Heal()
	c3, err := roundTrip(p.Addr())
	if err != nil {
		t.Fatalf("after Heal: %v", err)
	}
	c3.Close()
}
