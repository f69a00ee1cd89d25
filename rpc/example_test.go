package rpc_test

import (
	"context"
	"fmt"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
)

func Example() {
	b := bus.New()
	defer b.Close()
	rpc.ServeBroker(b) // .broker answers test, info, stats, client.list, benchmark.test

	conn, _ := b.RegisterClient("calc") // or transport.Dial(ctx, addr, "calc", opts)
	server := rpc.New(conn, rpc.Options{})
	defer server.Close()
	server.Handle("add", func(_ context.Context, r rpc.Request) ([]byte, error) {
		var p struct{ A, B int }
		if err := rpc.Unmarshal(r.Params, &p); err != nil {
			return nil, err // CodeInvalidParams
		}
		return rpc.Marshal(p.A + p.B)
	})

	conn2, _ := b.RegisterClient("user")
	client := rpc.New(conn2, rpc.Options{})
	defer client.Close()
	sum, err := rpc.CallValue[int](context.Background(), client, "calc", "add", struct{ A, B int }{2, 40})
	fmt.Println(sum, err)

	ok, _ := client.Call(context.Background(), bus.BrokerName, "test", nil)
	fmt.Printf("% x\n", ok)

	_, err = client.Call(context.Background(), "nobody", "add", nil)
	fmt.Println(err)
	// Output:
	// 42 <nil>
	// 81 a2 6f 6b c3
	// rpc: not registered (-32113)
}
