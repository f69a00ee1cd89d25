package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var userSeq atomic.Int64

// signup makes a user in a fresh tenant on base and logs it in on login.
func signup(base, login string) (tenant, token string, err error) {
	name := fmt.Sprintf("cl%d-%d-%d", os.Getpid(), time.Now().UnixNano(), userSeq.Add(1))
	tenant = "tenant-" + name
	body := fmt.Sprintf(`{"username":%q,"password":"bench-password","tenant_id":%q}`, name, tenant)
	resp, err := client.Post(base+"/users", "application/json", strings.NewReader(body))
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return "", "", fmt.Errorf("sign-up: status %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second) // another node may take a moment to know the user
	for {
		resp, err = client.Post(login+"/login", "application/json", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":"bench-password"}`, name)))
		if err != nil {
			return "", "", err
		}
		var out struct{ JWT string }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode == 200 && out.JWT != "" {
			return tenant, out.JWT, nil
		}
		if time.Now().After(deadline) {
			return "", "", fmt.Errorf("login: status %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// insert posts one event and returns its id.
func insert(ctx context.Context, base, token, body string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/insert", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("insert: status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var out struct{ Event struct{ ID string } }
	json.Unmarshal(b, &out)
	return out.Event.ID, nil
}

type insertResult struct {
	perSec   float64
	p50, p99 time.Duration
	errors   int64
}

// insertRun runs conc closed-loop clients against s's nodes for d.
func insertRun(s *system, conc int, d time.Duration) (insertResult, error) {
	_, token, err := signup(s.nodes[0].url, s.nodes[0].url)
	if err != nil {
		return insertResult{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lats []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := s.nodes[i%len(s.nodes)].url
			var mine []time.Duration
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				_, err := insert(ctx, base, token, fmt.Sprintf(`{"event":"bench","collection_id":"c%d","data":{"n":%d}}`, i, n))
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return insertResult{perSec: float64(len(lats)) / el.Seconds(), p50: pct(lats, 0.5), p99: pct(lats, 0.99), errors: errs.Load()}, nil
}

func benchInserts(c *config, systems []*system) {
	fmt.Printf("\n== synced inserts: closed-loop clients spread over the nodes, %v each, median of %d\n", c.duration, c.runs)
	fmt.Printf("%-9s %5s %10s %9s %9s %9s %7s\n", "target", "conc", "inserts/s", "x_single", "p50_ms", "p99_ms", "errors")
	for _, conc := range c.concs {
		res := map[string][]insertResult{}
		for range c.runs {
			for _, s := range systems {
				r, err := insertRun(s, conc, c.duration)
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s, %d clients: %v\n", s.label, conc, err)
					continue
				}
				res[s.label] = append(res[s.label], r)
				time.Sleep(time.Second)
			}
		}
		ref := 0.0
		for _, s := range systems {
			rs := res[s.label]
			var ps, p50, p99 []float64
			var errs int64
			for _, r := range rs {
				ps, p50, p99 = append(ps, r.perSec), append(p50, ms(r.p50)), append(p99, ms(r.p99))
				errs += r.errors
			}
			m := median(ps)
			if ref == 0 {
				ref = m
			}
			fmt.Printf("%-9s %5d %10.0f %9.2f %9.2f %9.2f %7d\n", s.label, conc, m, m/max(ref, 1e-9), median(p50), median(p99), errs)
		}
	}
}
