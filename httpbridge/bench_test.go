package httpbridge_test

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// BenchmarkInsert: POST /insert over real HTTP from 8 concurrent clients, each insert synced
// to the store and published to one open stream before it is acknowledged.
func BenchmarkInsert(b *testing.B) {
	e := newEnv(b, nil)
	u := e.signup("ann", "acme")
	st := e.openStream("/sse", u.bearer(), nil)
	go func() {
		for range st.msgs {
		}
	}()
	postInserts(b, e, u)
}

// postInserts runs b.N POST /insert requests of u over real HTTP from 8 concurrent clients and
// reports inserts/s and the CPU time of the process per insert.
func postInserts(b *testing.B, e *env, u user) {
	body := []byte(`{"event":"temp","data":{"celsius":21.5,"room":"lab"},"collection_id":"c1"}`)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetParallelism((8 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", e.url+"/insert", bytes.NewReader(body))
			req.Header.Set("Authorization", u.bearer())
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "inserts/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e3, "cpu-µs/insert")
}
