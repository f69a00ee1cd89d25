package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// writers insert at once during a failover.
const writers = 4

type failoverResult struct {
	leader         string
	metaToo        bool          // the killed node also led JetStream's meta group
	elected        time.Duration // until the stream had a new leader (NATS's election); 0 unknown
	insert, stream time.Duration
	lost           int // acknowledged inserts the resumed stream never delivered
}

// failoverOnce kills the event log's leader while a client inserts through the other nodes
// and a stream follows on the leader, and measures from the kill: to the first insert sent
// after it that is acknowledged, and to the first of those that the stream, resumed on
// another node, delivers.
func failoverOnce(s *system) (failoverResult, error) {
	var res failoverResult
	leader, err := s.streamLeader()
	if err != nil {
		return res, err
	}
	res.leader = leader.name
	var rest []*node
	for _, n := range s.nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	tenant, token, err := signup(rest[0].url, leader.url)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// The stream: on the leader, then, when its connection ends, resumed on another node
	// from the last cursor it had, as a front end does.
	var (
		mu      sync.Mutex
		seen    = map[string]int64{} // event id: when the stream delivered it (unix ns)
		after   = map[string]bool{}  // ids of the inserts sent after the kill
		cursor  string
		killed  atomic.Int64 // unix ns of the kill; 0 before
		resumed int64        // when the stream delivered the first insert sent after the kill
	)
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	opened := make(chan error, 1)
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		path := "/events/" + url.PathEscape(tenant) + "?token=" + url.QueryEscape(token)
		on := leader
		for i := 0; ctx.Err() == nil; i++ {
			mu.Lock()
			cur := cursor
			mu.Unlock()
			sseRead(ctx, hc, on.url+path, cur, func(err error) {
				if i == 0 {
					opened <- err
				}
			}, func(data []byte, cur string) {
				mu.Lock()
				defer mu.Unlock()
				if cur != "" {
					cursor = cur
				}
				id := indexID(data)
				now := time.Now().UnixNano()
				seen[id] = now
				if after[id] && resumed == 0 {
					resumed = now
				}
			})
			on = rest[i%len(rest)]
			if ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond) // a front end's reconnect delay
			}
		}
	}()
	if err := <-opened; err != nil {
		return res, err
	}

	// The writers: clients in closed loops through the nodes that stay up, several so that
	// an insert stuck until its timeout in the election does not hide the first that could
	// be acknowledged.
	var (
		acked    []string
		ackedAt  atomic.Int64 // first acknowledgement of an insert sent after the kill
		wmu      sync.Mutex
		stopW    = make(chan struct{})
		writerOK = make(chan struct{})
	)
	debug, lastMsg := os.Getenv("CLUSTERLOAD_DEBUG") != "", map[string]string{}
	writer := func(w int) {
		for i := w; ; i += writers {
			select {
			case <-stopW:
				return
			default:
			}
			sent := time.Now().UnixNano()
			id, err := insert(ctx, rest[i%len(rest)].url, token, fmt.Sprintf(`{"event":"f","data":%d}`, i))
			wmu.Lock()
			if debug { // each node's failures as they change
				name, msg := rest[i%len(rest)].name, fmt.Sprint(err)
				if len(msg) > 100 {
					msg = msg[:100]
				}
				if err == nil {
					msg = "ok"
				}
				if lastMsg[name] != msg {
					lastMsg[name] = msg
					fmt.Fprintf(os.Stderr, "%6.2f s %s: %s\n", float64(time.Now().UnixNano()-killed.Load())/1e9, name, msg)
				}
			}
			if err != nil {
				wmu.Unlock()
				time.Sleep(5 * time.Millisecond)
				continue
			}
			now := time.Now().UnixNano()
			acked = append(acked, id)
			wmu.Unlock()
			if k := killed.Load(); k != 0 && sent >= k {
				if ackedAt.Load() == 0 {
					ackedAt.Store(now)
				}
				mu.Lock()
				after[id] = true
				if t, ok := seen[id]; ok && resumed == 0 { // delivered before its answer came
					resumed = t
				}
				mu.Unlock()
			}
		}
	}
	var wwg sync.WaitGroup
	for w := range writers {
		wwg.Add(1)
		go func() { defer wwg.Done(); writer(w) }()
	}
	go func() { wwg.Wait(); close(writerOK) }()
	time.Sleep(time.Second) // steady state
	res.metaToo = s.metaLeader() == leader.name
	k := time.Now()
	leader.kill()
	killed.Store(k.UnixNano())
	if debug {
		fmt.Fprintf(os.Stderr, "%s killed at %s\n", leader.name, k.UTC().Format("15:04:05.000"))
	}
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ackedAt.Load() != 0 && resumed != 0
	}
	for !done() && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stopW)
	<-writerOK
	if ctx.Err() != nil {
		mu.Lock()
		defer mu.Unlock()
		return res, fmt.Errorf("%s killed: within 120 s, an insert sent after the kill acknowledged: %v; one delivered by the stream resumed on another node: %v (CLUSTERLOAD_DEBUG=1 shows the answers)",
			leader.name, ackedAt.Load() != 0, resumed != 0)
	}
	res.insert = time.Duration(ackedAt.Load() - k.UnixNano())
	mu.Lock()
	res.stream = time.Duration(resumed - k.UnixNano())
	mu.Unlock()
	// Every acknowledged insert reaches the resumed stream.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		lost := 0
		for _, id := range acked {
			if seen[id] == 0 {
				lost++
			}
		}
		mu.Unlock()
		res.lost = lost
		if lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if e := s.elected(); e.After(k) {
		res.elected = e.Sub(k)
	}
	cancel()
	<-streamDone
	return res, nil
}

// indexID finds the event id in a stream message's data (the record's "id" field).
func indexID(data []byte) string {
	const key = `"id":"`
	for i := 0; i+len(key) <= len(data); i++ {
		if string(data[i:i+len(key)]) == key {
			rest := data[i+len(key):]
			for j, b := range rest {
				if b == '"' {
					return string(rest[:j])
				}
			}
		}
	}
	return ""
}

func benchFailover(c *config, s *system) {
	fmt.Printf("\n== failover: SIGKILL of the event log's leader (%d nodes); from the kill to the next acknowledged insert and to the first event of the stream resumed on another node\n", len(s.nodes))
	fmt.Printf("%-4s %-7s %5s %10s %10s %10s %5s\n", "run", "killed", "meta", "elected_s", "insert_s", "stream_s", "lost")
	var ins, str, el []float64
	for r := range c.failovers {
		res, err := failoverOnce(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "failover:", err)
			return
		}
		ins, str, el = append(ins, res.insert.Seconds()), append(str, res.stream.Seconds()), append(el, res.elected.Seconds())
		meta := "no"
		if res.metaToo {
			meta = "yes"
		}
		fmt.Printf("%-4d %-7s %5s %10.2f %10.2f %10.2f %5d\n", r+1, res.leader, meta, res.elected.Seconds(), res.insert.Seconds(), res.stream.Seconds(), res.lost)
		for _, n := range s.nodes {
			if !n.running() {
				if err := n.start(); err != nil {
					fatal(err)
				}
				if err := n.waitReady(120 * time.Second); err != nil {
					fatal(err)
				}
			}
		}
		time.Sleep(3 * time.Second) // the restarted node caught up and back in the stream's group
	}
	fmt.Printf("%-4s %-7s %5s %10.2f %10.2f %10.2f\n", "med", "", "", median(el), median(ins), median(str))
}
