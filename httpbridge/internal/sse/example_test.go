package sse_test

import (
	"fmt"
	"net/http"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

func ExampleAppendMessage() {
	record := []byte(`{"event":"note","data":{"text":"café at 10:30"}}`)
	fmt.Printf("%s", sse.AppendMessage(nil, "note", record, 42, 3000))
	// Output:
	// event:note
	// data:{"event":"note","data":{"text":"caf\u00e9 at 10\u003a30"}}
	// id:42
	// retry:3000
}

func ExampleHub_Serve() {
	hub := sse.NewHub(sse.HubOptions{})
	defer hub.Close()
	http.HandleFunc("GET /events/{tenant}", func(w http.ResponseWriter, r *http.Request) {
		// Authentication and the tenant check come first (not shown).
		hub.Serve(r.Context(), w, sse.StreamOptions{
			Tenant:   r.PathValue("tenant"),
			DataOnly: r.URL.Query().Get("format") == "data",
			Backlog: func(send func(sse.Message) error) (uint64, error) {
				// Send the tenant's state (or what followed Last-Event-ID) and return the
				// last Seq sent; live messages up to it are then skipped.
				return 0, nil
			},
			Detach: true, // an idle HTTP/1.x stream costs about 1.5 KB and no goroutine
		})
	})
	// Each publication, in Seq order per tenant:
	hub.Publish(sse.Message{Tenant: "acme", Seq: 1, Event: "note", Record: []byte(`{"event":"note"}`), Data: []byte(`{}`)})
}
