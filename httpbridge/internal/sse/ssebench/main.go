// Command ssebench serves the sse Hub alone, with the routes of the bare broadcaster
// ../shared/bench/refsse, so that bench/sse.sh can put the SSE layer under the same load
// generator without the bridge's store and auth. Loopback only; not part of the daemon.
//
//	GET  /sse?topic=T   an SSE stream of tenant T (detached unless -detach=false)
//	POST /pub?topic=T   the body (a JSON value) is published to tenant T as the data of an
//	                    event record like the bridge's, with the next sequence number
//
// With -idle N -url URL it is instead a client that opens N idle streams to URL and reports
// the resident memory growth of the server process -pid per stream.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/sse"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3200", "listen address (loopback)")
	detach := flag.Bool("detach", true, "serve streams detached (StreamOptions.Detach)")
	queue := flag.Int("queue", 0, "HubOptions.QueueSize (0 = default)")
	idle := flag.Int("idle", 0, "client mode: open this many idle streams to -url")
	idleURL := flag.String("url", "", "client mode: stream URL (loopback)")
	pid := flag.Int("pid", 0, "client mode: the server's process id, to read its memory")
	hold := flag.Duration("hold", 0, "client mode: keep the streams open this long after measuring")
	flag.Parse()
	if *idle > 0 {
		if err := idleClients(*idle, *idleURL, *pid, *hold); err != nil {
			log.Fatal("ssebench: ", err)
		}
		return
	}
	if h, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(h).IsLoopback() {
		log.Fatalf("ssebench: %s is not a loopback address", *addr)
	}
	hub := sse.NewHub(sse.HubOptions{QueueSize: *queue})
	var mu sync.Mutex
	seqs := map[string]uint64{}

	http.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		hub.Serve(r.Context(), w, sse.StreamOptions{Tenant: r.URL.Query().Get("topic"), Detach: *detach})
	})
	http.HandleFunc("POST /pub", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !json.Valid(body) {
			http.Error(w, `{"error":"body is not JSON"}`, http.StatusBadRequest)
			return
		}
		tenant := r.URL.Query().Get("topic")
		mu.Lock()
		defer mu.Unlock() // publish in Seq order, as the store's OnPublish does
		seqs[tenant]++
		rec, _ := json.Marshal(map[string]any{
			"id": "0b6c3a1e-8d0a-4d7e-9d55-3f7c2b1a9e10", "event": "bench", "tenant_id": tenant,
			"collection_id": "bench", "user_id": "9a8b7c6d-1111-2222-3333-444455556666",
			"timestamp": time.Now().Unix(), "published": true, "cancelled": false,
			"data": json.RawMessage(body),
		})
		hub.Publish(sse.Message{Tenant: tenant, Seq: seqs[tenant], Event: "bench", Record: rec, Data: body})
		w.WriteHeader(http.StatusNoContent)
	})
	log.Printf("ssebench listening on %s (detach=%v)", *addr, *detach)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
