package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRun runs the host program: a plugin on a real UNIX socket gets an event that a front
// end inserted over real HTTP, and everything shuts down without an error.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out, false); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want := strings.Join([]string{
		".broker lists .broker (internal)",
		".broker lists .httpbridge (internal)",
		".broker lists example.plugin (local_ipc)",
		"a front end inserted an event over HTTP",
		"the plugin got it on rtbus/http/acme/events/door",
	}, "\n") + "\n"
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
