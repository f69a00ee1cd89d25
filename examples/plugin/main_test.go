package main

import (
	"context"
	"strings"
	"testing"
)

// TestRun runs the example against a broker of its own, over a real UNIX socket.
func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), &out, "", false); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"started a broker on a temporary UNIX socket",
		"caller got: hello, world",
		"caller got error -32602: want {name: string}",
		"calling a client that is not there: rpc: not registered (-32113)",
		"greeter got example/news/1 from example.caller: rtbus speaks BUS/RT",
		".broker lists example.caller (local_ipc)",
		".broker lists example.greeter (local_ipc)",
	}, "\n") + "\n"
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
