// Command aaa shows the access policy at work: "test" may connect only from 127.0.0.0/8, and
// "test2" may only message "test" and publish under "news/". Every refused step prints why.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"

	"github.com/rtbus/rtbus/aaa"
	"github.com/rtbus/rtbus/bus"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer) error {
	policy := aaa.NewMap()
	if err := policy.Set("test", aaa.Policy{Hosts: []string{"127.0.0.0/8"}}); err != nil {
		return err
	}
	err := policy.Set("test2", aaa.Policy{
		P2P:       aaa.Rule{Allow: []string{"test"}},
		Publish:   aaa.Rule{Allow: []string{"news/#"}},
		Subscribe: aaa.Rule{Deny: true},
		Broadcast: aaa.Rule{Deny: true},
	})
	if err != nil {
		return err
	}
	b := bus.New(bus.WithPolicy(policy))
	defer b.Close()

	// In-process clients have no address; a transport passes the peer's with WithConnInfo.
	from := func(addr string) bus.ClientOption {
		return bus.WithConnInfo(bus.ConnInfo{Kind: bus.KindTCP, Source: netip.MustParseAddrPort(addr)})
	}
	report := func(step string, err error) {
		switch {
		case err == nil:
			fmt.Fprintf(w, "%-42s ok\n", step)
		case errors.Is(err, bus.ErrAccessDenied):
			fmt.Fprintf(w, "%-42s refused: %v\n", step, err)
		default:
			fmt.Fprintf(w, "%-42s failed: %v\n", step, err)
		}
	}
	_, err = b.RegisterClient("test", from("10.1.2.3:40000"))
	report(`register "test" from 10.1.2.3`, err)
	test, err := b.RegisterClient("test", from("127.0.0.1:40000"))
	report(`register "test" from 127.0.0.1`, err)
	_, err = b.RegisterClient("intruder")
	report(`register "intruder" (not in the policy)`, err)
	test2, err := b.RegisterClient("test2")
	report(`register "test2"`, err)
	if test == nil || test2 == nil {
		return errors.New("setup failed")
	}

	report(`test2 sends to "test"`, test2.Send(bus.QoSProcessed, "test", []byte("hi")))
	report(`test2 sends to "test2"`, test2.Send(bus.QoSProcessed, "test2", []byte("hi")))
	report(`test2 publishes "news/today"`, test2.Publish(bus.QoSProcessed, "news/today", []byte("x")))
	report(`test2 publishes "alerts/now"`, test2.Publish(bus.QoSProcessed, "alerts/now", []byte("x")))
	report(`test2 broadcasts to "*"`, test2.Broadcast(bus.QoSProcessed, "*", []byte("x")))
	report(`test sends to "test2"`, test.Send(bus.QoSProcessed, "test2", []byte("hello back")))
	return nil
}
