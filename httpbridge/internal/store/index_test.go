package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

func iev(id, name string, ts int64) store.Event {
	return store.Event{ID: id, Event: name, TenantID: "t", CollectionID: "c", UserID: "u", Timestamp: ts, Data: []byte(`{"v":"` + id + `"}`)}
}

type pubLog struct {
	mu   sync.Mutex
	pubs []store.Event
}

func (p *pubLog) on(e store.Event) { p.mu.Lock(); p.pubs = append(p.pubs, e); p.mu.Unlock() }
func (p *pubLog) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.pubs {
		out = append(out, e.ID)
	}
	return out
}

func openIndex(t *testing.T, dir string, pl *pubLog) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.Options{OnPublish: pl.on})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// The log of a scheduled event fired twice (a leader change), of one cancelled and of one
// whose cancel came after its publication: each event is published at most once, with the
// stream sequences as counters, and re-applying the same records changes nothing.
func TestIndexApply(t *testing.T) {
	pl := &pubLog{}
	db := openIndex(t, t.TempDir(), pl)
	defer db.Close()
	if err := db.Apply("ep", []store.Record{{Seq: 1, Kind: store.KindInsert, Event: iev("a", "x", 10)}}); !errors.Is(err, store.ErrEpoch) {
		t.Fatalf("Apply before Reset: %v, want ErrEpoch", err)
	}
	if err := db.Reset("ep"); err != nil {
		t.Fatal(err)
	}
	recs := []store.Record{
		{Seq: 3, Kind: store.KindInsert, Event: iev("a", "x", 10)},
		{Seq: 5, Kind: store.KindSchedule, Event: iev("b", "x", 20)},
		{Seq: 6, Kind: store.KindSchedule, Event: iev("c", "y", 30)},
		{Seq: 7, Kind: store.KindInsert, Event: iev("a", "x", 10)}, // repeat of an insert
	}
	if err := db.Apply("ep", recs); err != nil {
		t.Fatal(err)
	}
	if n := db.Scheduled(); n != 2 {
		t.Errorf("Scheduled = %d, want 2", n)
	}
	recs2 := []store.Record{
		{Seq: 8, Kind: store.KindPublish, Event: iev("b", "x", 20)},
		{Seq: 9, Kind: store.KindPublish, Event: iev("b", "x", 20)}, // fired again
		{Seq: 10, Kind: store.KindCancel, Event: iev("c", "y", 30)},
		{Seq: 11, Kind: store.KindPublish, Event: iev("c", "y", 30)}, // fired after its cancel
		{Seq: 12, Kind: store.KindCancel, Event: iev("b", "x", 20)},  // cancel after publication
	}
	if err := db.Apply("ep", recs2); err != nil {
		t.Fatal(err)
	}
	// The same records again (a consumer redelivering): nothing changes.
	if err := db.Apply("ep", append(recs, recs2...)); err != nil {
		t.Fatal(err)
	}
	if got := pl.ids(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("published %v, want [a b]", got)
	}
	a, _ := db.Get("t", "a")
	b, _ := db.Get("t", "b")
	c, _ := db.Get("t", "c")
	if a.Seq != 3 || a.Order != 3 || !a.Published || b.Seq != 8 || b.Order != 8 || !b.Published || b.Cancelled || !c.Cancelled || c.Published {
		t.Errorf("a=%+v b=%+v c=%+v", a, b, c)
	}
	if n := db.Scheduled(); n != 0 {
		t.Errorf("Scheduled = %d, want 0", n)
	}
	state, last, err := db.State("t")
	if err != nil || last != 8 || len(state) != 1 || state[0].ID != "b" {
		t.Errorf("State = %v, %d, %v; want [b], 8", state, last, err)
	}
	var since []uint64
	if _, err := db.Since("t", 3, func(e store.Event) error { since = append(since, e.Seq); return nil }); err != nil || len(since) != 1 || since[0] != 8 {
		t.Errorf("Since(3) = %v, %v; want [8]", since, err)
	}
	cp, err := db.Checkpoint()
	if err != nil || cp != (store.Checkpoint{Epoch: "ep", Seq: 12, First: 3}) {
		t.Errorf("Checkpoint = %+v, %v", cp, err)
	}
	if err := db.Apply("other", []store.Record{{Seq: 13, Kind: store.KindInsert, Event: iev("d", "x", 1)}}); !errors.Is(err, store.ErrEpoch) {
		t.Errorf("Apply of another epoch: %v, want ErrEpoch", err)
	}
}

// A log whose schedules were purged (fired, or cancelled) still rebuilds every event from
// the records that remain; the checkpoint and applied sequence survive a reopen, and Reset
// empties the index but keeps the users.
func TestIndexRebuildAndReopen(t *testing.T) {
	dir := t.TempDir()
	pl := &pubLog{}
	db := openIndex(t, dir, pl)
	if err := db.CreateUser(store.User{ID: "u1", Username: "ann", TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Reset("ep"); err != nil {
		t.Fatal(err)
	}
	recs := []store.Record{
		{Seq: 4, Kind: store.KindPublish, Event: iev("b", "x", 20)},
		{Seq: 6, Kind: store.KindCancel, Event: iev("c", "y", 30)},
	}
	if err := db.Apply("ep", recs); err != nil {
		t.Fatal(err)
	}
	mine, err := db.UserEvents("t", "u")
	if err != nil || len(mine) != 2 || mine[0].ID != "b" || !mine[0].Published || mine[1].ID != "c" || !mine[1].Cancelled {
		t.Fatalf("UserEvents = %+v, %v", mine, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openIndex(t, dir, pl)
	defer db.Close()
	if db.Applied() != 6 {
		t.Errorf("Applied after reopen = %d, want 6", db.Applied())
	}
	if err := db.Reset("ep2"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get("t", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Reset: %v, want ErrNotFound", err)
	}
	if _, err := db.UserByName("ann"); err != nil {
		t.Errorf("a user after Reset: %v", err)
	}
	if cp, _ := db.Checkpoint(); cp != (store.Checkpoint{Epoch: "ep2"}) {
		t.Errorf("Checkpoint after Reset = %+v", cp)
	}
}

func TestWaitApplied(t *testing.T) {
	db := openIndex(t, t.TempDir(), &pubLog{})
	if err := db.Reset("ep"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- db.WaitApplied(context.Background(), 2) }()
	if err := db.Apply("ep", []store.Record{{Seq: 1, Kind: store.KindInsert, Event: iev("a", "x", 1)}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("WaitApplied(2) returned %v at 1", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := db.Apply("ep", []store.Record{{Seq: 2, Kind: store.KindInsert, Event: iev("b", "x", 1)}}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := db.WaitApplied(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitApplied past the log: %v", err)
	}
	go func() { done <- db.WaitApplied(context.Background(), 3) }()
	db.Close()
	if err := <-done; !errors.Is(err, store.ErrClosed) {
		t.Errorf("WaitApplied at Close: %v, want ErrClosed", err)
	}
}
