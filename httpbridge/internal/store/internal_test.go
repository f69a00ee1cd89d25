package store

import (
	"encoding/json"
	"errors"
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
	if err := db.pdb.Set(dueKey(nil, 1, 1<<40), dueVal(nil, "t", "missing"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.pdb.Set(dueKey(nil, 2, 1<<40), []byte("garbage"), pebble.Sync); err != nil {
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

func TestRecordRoundTrip(t *testing.T) {
	for _, e := range []Event{
		{ID: "i", Event: "n", TenantID: "t\x00", CollectionID: "", UserID: "ü", Timestamp: -1 << 62,
			Data: json.RawMessage(" { \"a\" : [1, 2] } "), Order: 1 << 63, Seq: 5, Published: true},
		{ID: "j", Event: "m", TenantID: "t", Cancelled: true, Timestamp: 1 << 62},
	} {
		v, err := encodeEvent(nil, nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEvent(v)
		if err != nil {
			t.Fatal(err)
		}
		want := e
		want.Data = json.RawMessage(`{"a":[1,2]}`)
		if len(e.Data) == 0 {
			want.Data = json.RawMessage(`null`)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) || got.Order != want.Order {
			t.Fatalf("round trip:\n got %s %d\nwant %s %d", gj, got.Order, wj, want.Order)
		}
	}
	if _, err := encodeEvent(nil, nil, &Event{Data: json.RawMessage(`{`)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad JSON: %v", err)
	}
}
