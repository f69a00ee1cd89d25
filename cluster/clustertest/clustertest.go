// Package clustertest starts real in-process rtbus cluster nodes (embedded nats-servers
// routed to each other on loopback) for tests.
package clustertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtbus/rtbus/cluster"
	"github.com/rtbus/rtbus/internal/rtbusdproc"
)

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment ago, drawn
// where the system does not hand out ports by itself (see rtbusdproc.FreePorts).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := rtbusdproc.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// Options for each node of Start; Listen, Peers, DataDir and NodeName are filled in.
func Options(t testing.TB, n int) []cluster.Options {
	t.Helper()
	ports := FreePorts(t, n)
	base := t.TempDir()
	out := make([]cluster.Options, n)
	for i := range n {
		var peers []string
		for j, p := range ports {
			if j != i {
				peers = append(peers, fmt.Sprintf("127.0.0.1:%d", p))
			}
		}
		out[i] = cluster.Options{
			Name:     "test",
			NodeName: fmt.Sprintf("n%d", i+1),
			Listen:   fmt.Sprintf("127.0.0.1:%d", ports[i]),
			Peers:    peers,
			DataDir:  filepath.Join(base, fmt.Sprintf("n%d", i+1)),
			Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if n == 1 {
			out[i].Peers = nil
		}
	}
	return out
}

// Start starts n routed nodes and waits until JetStream answers on each; they are closed
// when the test ends.
func Start(t testing.TB, n int) []*cluster.Node {
	t.Helper()
	nodes := make([]*cluster.Node, n)
	for i, o := range Options(t, n) {
		nd, err := cluster.Start(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nd.Close)
		nodes[i] = nd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nd := range nodes {
		if err := nd.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}
