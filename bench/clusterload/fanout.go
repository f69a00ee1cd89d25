package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var marker = []byte(`"lg":"`)

// receiver is one SSE stream's counts: a warm-up probe seen, and the latency of each
// measured event (the payload carries its send time).
type receiver struct {
	ready atomic.Bool
	lats  []time.Duration
	last  atomic.Int64
}

// sseRead opens an SSE stream at u and hands each data line to f until ctx ends. open is
// called once the stream answered (or failed).
func sseRead(ctx context.Context, hc *http.Client, u, cursor string, open func(error), f func(line []byte, id string)) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	if cursor != "" {
		req.Header.Set("Last-Event-ID", cursor)
	}
	resp, err := hc.Do(req)
	if err == nil && resp.StatusCode != 200 {
		resp.Body.Close()
		err = fmt.Errorf("stream: status %d", resp.StatusCode)
	}
	open(err)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var data []byte
	var id string
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) > 0 {
				f(data, id)
			}
			data, id = data[:0], ""
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data[:0], line[5:]...)
		case bytes.HasPrefix(line, []byte("id:")):
			id = string(line[3:])
		}
	}
	return sc.Err()
}

func (r *receiver) scan(line []byte, ready *atomic.Int64, delivered *atomic.Int64) {
	i := bytes.Index(line, marker)
	if i < 0 {
		return
	}
	tok := line[i+len(marker):]
	j := bytes.IndexByte(tok, '"')
	if j < 0 {
		return
	}
	tok = tok[:j]
	now := time.Now().UnixNano()
	if len(tok) > 0 && tok[0] == 'w' {
		if !r.ready.Swap(true) {
			ready.Add(1)
		}
		return
	}
	dot := bytes.IndexByte(tok, '.')
	if dot < 0 {
		return
	}
	sent, err := strconv.ParseInt(string(tok[dot+1:]), 10, 64)
	if err != nil {
		return
	}
	r.lats = append(r.lats, time.Duration(now-sent))
	r.last.Store(now)
	delivered.Add(1)
}

type fanoutResult struct {
	perSec              float64
	p50, p99            time.Duration
	delivered, expected int64
}

// fanoutRun: c.subs streams of a fresh tenant spread over s's nodes, c.msgs inserts on the
// first node.
func fanoutRun(c *config, s *system) (fanoutResult, error) {
	var res fanoutResult
	first := s.nodes[0].url
	tenant, token, err := signup(first, first)
	if err != nil {
		return res, err
	}
	for _, n := range s.nodes[1:] { // every node knows the user before the streams dial
		if _, err := insert(context.Background(), n.url, token, `{"event":"probe","data":0}`); err != nil {
			deadline := time.Now().Add(10 * time.Second)
			for err != nil && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				_, err = insert(context.Background(), n.url, token, `{"event":"probe","data":0}`)
			}
			if err != nil {
				return res, err
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.subs + 16, DisableCompression: true}}
	var ready, connected, failed, delivered atomic.Int64
	rs := make([]*receiver, c.subs)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range rs {
		r := &receiver{lats: make([]time.Duration, 0, c.msgs)}
		rs[i] = r
		u := s.nodes[i%len(s.nodes)].url + "/events/" + url.PathEscape(tenant) + "?token=" + url.QueryEscape(token)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sseRead(ctx, hc, u, "", func(err error) {
				<-sem
				if err != nil {
					failed.Add(1)
					fmt.Fprintln(os.Stderr, err)
				}
				connected.Add(1)
			}, func(line []byte, _ string) { r.scan(line, &ready, &delivered) })
		}()
	}
	for connected.Load() < int64(c.subs) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	live := int64(c.subs) - failed.Load()
	warm := time.Now().Add(60 * time.Second)
	for ready.Load() < live && time.Now().Before(warm) {
		insert(ctx, first, token, fmt.Sprintf(`{"event":"bench","collection_id":"b","data":{"lg":"w.%d"}}`, time.Now().UnixNano()))
		time.Sleep(100 * time.Millisecond)
	}
	if ready.Load() < live {
		fmt.Fprintf(os.Stderr, "%s: %d of %d streams warm\n", s.label, ready.Load(), live)
	}
	time.Sleep(200 * time.Millisecond) // the last probes delivered
	var seq atomic.Int64
	start := time.Now()
	var pwg sync.WaitGroup
	var pubErrs atomic.Int64
	for range c.pubc {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for {
				n := seq.Add(1) - 1
				if n >= int64(c.msgs) || ctx.Err() != nil {
					return
				}
				body := fmt.Sprintf(`{"event":"bench","collection_id":"b","data":{"lg":"%d.%d"}}`, n, time.Now().UnixNano())
				if _, err := insert(ctx, first, token, body); err != nil {
					pubErrs.Add(1)
				}
			}
		}()
	}
	pwg.Wait()
	want := ready.Load() * (int64(c.msgs) - pubErrs.Load())
	drain := time.Now().Add(30 * time.Second)
	for delivered.Load() < want && time.Now().Before(drain) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	var all []time.Duration
	var last int64
	for _, r := range rs {
		all = append(all, r.lats...)
		last = max(last, r.last.Load())
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.delivered, res.expected = delivered.Load(), live*int64(c.msgs)
	if last > 0 {
		res.perSec = float64(res.delivered) / (float64(last-start.UnixNano()) / 1e9)
	}
	res.p50, res.p99 = pct(all, 0.5), pct(all, 0.99)
	return res, nil
}

func benchFanout(c *config, systems []*system) {
	rs := map[string][]fanoutResult{}
	for range c.runs {
		for _, s := range systems {
			r, err := fanoutRun(c, s)
			if err != nil {
				fmt.Fprintf(os.Stderr, "fan-out %s: %v\n", s.label, err)
				continue
			}
			rs[s.label] = append(rs[s.label], r)
			time.Sleep(time.Second)
		}
	}
	fmt.Printf("\n== SSE fan-out: %d streams spread over the nodes, %d inserts on the first (%d publishers), median of %d\n", c.subs, c.msgs, c.pubc, c.runs)
	fmt.Printf("%-9s %12s %9s %9s %9s %9s %15s\n", "target", "deliveries/s", "x_single", "p50_ms", "p99_ms", "x_p99", "delivered")
	var ref, refp99 float64
	for _, s := range systems {
		var ps, p50, p99 []float64
		var del, exp int64
		for _, r := range rs[s.label] {
			ps, p50, p99 = append(ps, r.perSec), append(p50, ms(r.p50)), append(p99, ms(r.p99))
			del, exp = del+r.delivered, exp+r.expected
		}
		m, mp99 := median(ps), median(p99)
		if ref == 0 {
			ref, refp99 = m, mp99
		}
		fmt.Printf("%-9s %12.0f %9.2f %9.2f %9.2f %9.2f %15s\n", s.label, m, m/max(ref, 1e-9), median(p50), mp99, mp99/max(refp99, 1e-9), fmt.Sprintf("%d/%d", del, exp))
	}
}
