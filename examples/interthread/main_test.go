package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), &out, time.Millisecond, 3); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"worker.3 got message from worker.1: hello",
		"worker.3 got broadcast from worker.2: round 1",
		"worker.3 got message from worker.1: hello",
		"worker.3 got broadcast from worker.2: round 2",
		"worker.3 got message from worker.1: hello",
		"worker.3 got broadcast from worker.2: round 3",
		"worker.3 got publish on .broker/warn from .broker: map[s:shutdown t:",
	}, "\n")
	if !strings.HasPrefix(out.String(), want) {
		t.Fatalf("got:\n%s\nwant prefix:\n%s", out.String(), want)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out strings.Builder
	if err := run(ctx, &out, time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "round 1") {
		t.Fatalf("first round missing:\n%s", out.String())
	}
}
