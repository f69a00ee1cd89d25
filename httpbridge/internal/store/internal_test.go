package store

import (
	"encoding/json"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// A due entry naming no event (only corruption makes one) is dropped, and the scheduler
// goes on publishing the others.
func TestBadDueEntry(t *testing.T) {
	var got []string
	db, err := Open(t.TempDir(), Options{OnPublish: func(e Event) { got = append(got, e.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.pdb.Set(dueKey(1, 1<<40), dueVal("t", "missing"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.pdb.Set(dueKey(2, 1<<40), []byte("garbage"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Insert(Event{ID: "ok", Event: "n", TenantID: "t", Timestamp: 3, Data: json.RawMessage(`1`)}, false); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PublishDue(10); err != nil || n != 1 || len(got) != 1 || got[0] != "ok" {
		t.Fatalf("PublishDue = %d %v, published %v", n, err, got)
	}
	if ts, ok := db.NextDue(); ok {
		t.Fatalf("bad entries left in the due index (next %d)", ts)
	}
}
