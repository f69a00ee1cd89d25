package bus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rtbus/rtbus/bus"
)

func Example() {
	b := bus.New()
	defer b.Close()

	worker, _ := b.RegisterClient("worker.1")
	ui, _ := b.RegisterClient("ui")
	ui.Subscribe(bus.QoSProcessed, "unit/+/status", "news/#")

	// An acknowledging QoS returns the routing result as an error value.
	err := worker.Send(bus.QoSProcessed, "nobody", []byte("hello"))
	fmt.Println(errors.Is(err, bus.ErrNotRegistered))

	worker.Send(bus.QoSProcessed, "ui", []byte("hello"))
	worker.Publish(bus.QoSNo, "unit/7/status", []byte("ok"))
	worker.Publish(bus.QoSNo, "unit/7/load", []byte("ignored: ui is not subscribed"))
	for range 2 {
		f, _ := ui.Recv(context.Background())
		fmt.Println(f.Kind, f.Sender, f.Topic, string(f.Payload))
	}
	// Output:
	// true
	// message worker.1  hello
	// publish worker.1 unit/7/status ok
}

func ExampleClient_Broadcast() {
	b := bus.New()
	defer b.Close()
	var workers []*bus.Client
	for _, name := range []string{"worker.1", "worker.2", "worker.2%%extra", "other"} {
		c, _ := b.RegisterClient(name)
		workers = append(workers, c)
	}
	workers[0].Broadcast(bus.QoSNo, "worker.*", []byte("reload"))
	for _, c := range workers {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		f, err := c.Recv(ctx)
		cancel()
		if err != nil {
			fmt.Println(c.Name(), "-")
			continue
		}
		fmt.Println(c.Name(), string(f.Payload))
	}
	// Output:
	// worker.1 reload
	// worker.2 reload
	// worker.2%%extra reload
	// other -
}
