package jslog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/cluster"
	"github.com/rtbus/rtbus/cluster/clustertest"
	"github.com/rtbus/rtbus/httpbridge/internal/jslog"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

type index struct {
	db   *store.DB
	mu   sync.Mutex
	pubs map[string]int
	seqs []uint64
}

func (x *index) onPublish(e store.Event) {
	x.mu.Lock()
	x.pubs[e.ID]++
	x.seqs = append(x.seqs, e.Seq)
	x.mu.Unlock()
}

func (x *index) published(id string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.pubs[id]
}

// openLogs opens the log on every node at once and an index following it on each.
func openLogs(t *testing.T, nodes []*cluster.Node) ([]*jslog.Log, []*index) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	logs := make([]*jslog.Log, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logs[i], errs[i] = jslog.Open(ctx, nd.JetStream(), jslog.Options{Replicas: nd.Replicas()})
		}()
	}
	wg.Wait()
	var xs []*index
	fctx, fcancel := context.WithCancel(context.Background())
	var fwg sync.WaitGroup
	t.Cleanup(func() { fcancel(); fwg.Wait() })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		if logs[i].Epoch() != logs[0].Epoch() {
			t.Fatalf("epochs differ: %s, %s", logs[i].Epoch(), logs[0].Epoch())
		}
		x := &index{pubs: map[string]int{}}
		db, err := store.Open(t.TempDir(), store.Options{OnPublish: x.onPublish})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		x.db = db
		if rebuilt, err := logs[i].PrepareIndex(ctx, db); err != nil || !rebuilt {
			t.Fatalf("PrepareIndex of an empty store: %v, %v", rebuilt, err)
		}
		fwg.Add(1)
		go func() { defer fwg.Done(); logs[i].Follow(fctx, db) }()
		xs = append(xs, x)
	}
	return logs, xs
}

func waitApplied(t *testing.T, xs []*index, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, x := range xs {
		if err := x.db.WaitApplied(ctx, seq); err != nil {
			t.Fatalf("node %d: waiting for seq %d: %v (applied %d)", i+1, seq, err, x.db.Applied())
		}
	}
}

func event(id string, ts int64) store.Event {
	return store.Event{ID: id, Event: "e", TenantID: "t", CollectionID: "c", UserID: "u", Timestamp: ts, Data: []byte(`"` + id + `"`)}
}

func TestLogAcrossNodes(t *testing.T) {
	nodes := clustertest.Start(t, 3)
	logs, xs := openLogs(t, nodes)
	ctx := context.Background()
	now := time.Now().Unix()

	// An insert on node 1, retried on node 2 with the same id: stored once.
	s1, err := logs[0].Insert(ctx, event("a", now))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := logs[1].Insert(ctx, event("a", now))
	if err != nil || s2 != s1 {
		t.Fatalf("retried insert: seq %d, %v; want %d", s2, err, s1)
	}
	waitApplied(t, xs, s1)
	for i, x := range xs {
		e, err := x.db.Get("t", "a")
		if err != nil || e.Seq != s1 || !e.Published {
			t.Errorf("node %d: %+v, %v", i+1, e, err)
		}
	}

	// Two schedules due in a moment: one fires, one is cancelled first.
	soon := time.Now().Add(2 * time.Second).Unix()
	sb, err := logs[0].Schedule(ctx, event("b", soon))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := logs[2].Schedule(ctx, event("c", soon)); err != nil {
		t.Fatal(err)
	}
	sc, err := logs[1].Cancel(ctx, event("c", soon))
	if err != nil {
		t.Fatal(err)
	}
	// The second cancel finds the first one: ErrCancelled, or ErrDecided when the replica that
	// answered its read did not have the cancel yet (Cancel's contract: the index tells then,
	// and every index is checked for c's cancel below).
	if seq, err := logs[0].Cancel(ctx, event("c", soon)); !errors.Is(err, jslog.ErrDecided) && (!errors.Is(err, store.ErrCancelled) || seq != sc) {
		t.Errorf("second cancel: %d, %v; want ErrCancelled at %d, or ErrDecided", seq, err, sc)
	}
	waitApplied(t, xs, sc)
	// b fires on every index, once.
	deadline := time.Now().Add(15 * time.Second)
	for _, x := range xs {
		for x.published("b") == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A cancel after the firing loses: already published.
	pseq, err := logs[2].Cancel(ctx, event("b", soon))
	if !errors.Is(err, store.ErrPublished) || pseq <= sb {
		t.Fatalf("cancel after the firing: %d, %v; want ErrPublished", pseq, err)
	}
	last, err := logs[0].LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, xs, last)
	for i, x := range xs {
		if x.published("a") != 1 || x.published("b") != 1 || x.published("c") != 0 {
			t.Errorf("node %d: publications %v", i+1, x.pubs)
		}
		b, _ := x.db.Get("t", "b")
		c, _ := x.db.Get("t", "c")
		if b.Seq != pseq || b.Order != pseq || !c.Cancelled {
			t.Errorf("node %d: b=%+v c=%+v", i+1, b, c)
		}
		if fmt.Sprint(x.seqs) != fmt.Sprint(xs[0].seqs) {
			t.Errorf("node %d published %v, node 1 %v", i+1, x.seqs, xs[0].seqs)
		}
	}

	// An index rebuilt from the stream (the schedules of b and c are purged by now) has the
	// same events and counters.
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := logs[1].PrepareIndex(ctx, db); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { logs[1].Follow(fctx, db); close(done) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := db.WaitApplied(wctx, last); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		want, _ := xs[0].db.Get("t", id)
		got, err := db.Get("t", id)
		if err != nil || got.Seq != want.Seq || got.Order != want.Order || got.Published != want.Published || got.Cancelled != want.Cancelled {
			t.Errorf("rebuilt %s: %+v, %v; want %+v", id, got, err, want)
		}
	}
}

// A single node's store (events, no index checkpoint) is never wiped into an index.
func TestPrepareIndexKeepsSingleNodeData(t *testing.T) {
	nodes := clustertest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := jslog.Open(ctx, nodes[0].JetStream(), jslog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Insert(event("single", 1), true); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PrepareIndex(ctx, db); !errors.Is(err, jslog.ErrSingleNodeData) {
		t.Fatalf("PrepareIndex of a single node's store: %v, want ErrSingleNodeData", err)
	}
	if _, err := db.Get("t", "single"); err != nil {
		t.Fatalf("the single node's event: %v", err)
	}
}
