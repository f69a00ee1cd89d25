package store_test

import (
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(dir, store.Options{
		OnPublish: func(e store.Event) { fmt.Println("published", e.ID, "seq", e.Seq) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.Insert(store.Event{ID: "e1", Event: "greeting", TenantID: "acme", CollectionID: "c",
		Timestamp: 100, Data: json.RawMessage(`"hello"`)}, true)
	db.Insert(store.Event{ID: "e2", Event: "greeting", TenantID: "acme", CollectionID: "c",
		Timestamp: 200, Data: json.RawMessage(`"later"`)}, false)
	next, _ := db.NextDue()
	fmt.Println("next due at", next)
	db.PublishDue(200)
	state, seq, _ := db.State("acme")
	fmt.Println("state", state[0].ID, string(state[0].Data), "seq", seq)
	// Output:
	// published e1 seq 1
	// next due at 200
	// published e2 seq 2
	// state e2 "later" seq 2
}
