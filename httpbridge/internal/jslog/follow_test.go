package jslog_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rtbus/rtbus/httpbridge/internal/jslog"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
	"github.com/rtbus/rtbus/internal/testutil"
)

// TestFollowWithoutConsumers: a follower that cannot make a consumer (here its user may not;
// in a cluster, while JetStream's meta leader is being elected) still applies every record,
// once and in order, by reading the stream directly.
func TestFollowWithoutConsumers(t *testing.T) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Users: []*server.User{
			{Username: "writer", Password: "w"},
			{Username: "reader", Password: "r", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.CONSUMER.>"}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	connect := func(user, pass string) jetstream.JetStream {
		nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user, pass), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := jslog.Open(ctx, connect("writer", "w"), jslog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	r, err := jslog.Open(ctx, connect("reader", "r"), jslog.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}

	x := &index{pubs: map[string]int{}}
	db, err := store.Open(t.TempDir(), store.Options{OnPublish: x.onPublish})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	x.db = db
	if _, err := r.PrepareIndex(ctx, db); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Follow(fctx, db); close(done) }()
	defer func() { fcancel(); <-done }()

	// More than one direct read's batch, written while the follower runs.
	const n = 1200
	now := time.Now().Unix()
	var last uint64
	for i := range n {
		id := fmt.Sprintf("e%04d", i)
		if last, err = w.Insert(ctx, event(id, now)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.WaitApplied(ctx, last); err != nil {
		t.Fatalf("the index without a consumer: %v (applied %d of %d)\n%s", err, db.Applied(), last, logs.String())
	}
	x.mu.Lock()
	if len(x.seqs) != n {
		t.Fatalf("%d publications, want %d", len(x.seqs), n)
	}
	for i, s := range x.seqs {
		if s != uint64(i+1) {
			t.Fatalf("publication %d has seq %d: out of order", i, s)
		}
	}
	for id, c := range x.pubs {
		if c != 1 {
			t.Fatalf("%s published %d times", id, c)
		}
	}
	x.mu.Unlock()
	// And it said so (once a consumer's creation, refused without an answer, timed out).
	for !strings.Contains(logs.String(), "reading it directly meanwhile") {
		if ctx.Err() != nil {
			t.Fatalf("no log line tells that no consumer could be made:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
