package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rtbus/rtbus/cluster/clustertest"
)

// Three routed nodes agree on one replicated stream: what one writes, another reads.
func TestThreeNodesShareAStream(t *testing.T) {
	nodes := clustertest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r := nodes[0].Replicas(); r != 3 {
		t.Fatalf("replicas %d, want 3", r)
	}
	_, err := nodes[0].JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := nodes[1].JetStream().Publish(ctx, "t.x", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := nodes[2].JetStream().Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "hello" {
		t.Fatalf("read %q", m.Data)
	}
}
