package store_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// BenchmarkInsert measures acknowledged (synced, published) inserts per second with 1 and 8
// concurrent writers; the 8-writer figure shows how much the group commit shares fsyncs.
func BenchmarkInsert(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			var published atomic.Int64
			db, err := store.Open(b.TempDir(), store.Options{OnPublish: func(store.Event) { published.Add(1) }})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			data := json.RawMessage(`{"score":42,"player":"ann"}`)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						e := store.Event{ID: fmt.Sprintf("e%d", i), Event: "score", TenantID: fmt.Sprintf("t%d", w%4),
							CollectionID: "c", UserID: "u", Timestamp: i, Data: data}
						if _, err := db.Insert(e, true); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "inserts/s")
			syncs, synced := store.SyncStats(db)
			b.ReportMetric(float64(synced)/float64(syncs), "commits/fsync")
			if published.Load() != int64(b.N) {
				b.Fatalf("%d published, want %d", published.Load(), b.N)
			}
		})
	}
}

// BenchmarkState measures what a stream pays on connect: the state of a tenant with 100
// (name, collection) pairs, each published 10 times.
func BenchmarkState(b *testing.B) {
	db := benchDB(b, 100, 10)
	defer db.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st, _, err := db.State("t")
		if err != nil || len(st) != 100 {
			b.Fatal(len(st), err)
		}
	}
}

// BenchmarkSince measures a resume that replays the last 100 publications.
func BenchmarkSince(b *testing.B) {
	db := benchDB(b, 100, 10)
	defer db.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if _, err := db.Since("t", 900, func(store.Event) error { n++; return nil }); err != nil || n != 100 {
			b.Fatal(n, err)
		}
	}
}

func benchDB(b *testing.B, pairs, times int) *store.DB {
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for p := range pairs {
		wg.Add(1)
		go func() { // concurrent writers share fsyncs: a quick setup
			defer wg.Done()
			for i := range times {
				e := store.Event{ID: fmt.Sprintf("e%d-%d", p, i), Event: fmt.Sprintf("n%d", p%10), TenantID: "t",
					CollectionID: fmt.Sprintf("c%d", p/10), Timestamp: int64(i), Data: json.RawMessage(`{"v":1}`)}
				if _, err := db.Insert(e, true); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return db
}
