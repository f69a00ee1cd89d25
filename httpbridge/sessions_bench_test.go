package httpbridge_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time the process has used (user and system): on a shared machine it
// moves far less with the load than the wall clock does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTokenCheck: the check of a Bearer token (signature, claims, blacklist, user
// record) with an empty blacklist and with 100,000 sessions on it.
func BenchmarkTokenCheck(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("blacklist=%d", n), func(b *testing.B) {
			e := newEnv(b, nil)
			u := e.signup("ann", "acme")
			e.srv.FillBlacklist(n, e.clock.Now().Unix()+3600)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := e.srv.CheckToken(u.token); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkBlacklistLookup: the blacklist's part of a token check, with 100,000 sessions on
// it, for a session that is not on it and one that is.
func BenchmarkBlacklistLookup(b *testing.B) {
	e := newEnv(b, nil)
	e.srv.FillBlacklist(100_000, e.clock.Now().Unix()+3600)
	for name, id := range map[string]string{"absent": "5f0c3a36-8e41-4a43-9bd4-0b1d3f4f1a11", "present": "bench-00050000-0000-4000-8000-000000000000"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.srv.Refused(id)
			}
		})
	}
}

// BenchmarkInsertBlacklist: BenchmarkInsert's POST /insert load with an empty blacklist and
// with 100,000 sessions on it.
func BenchmarkInsertBlacklist(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("blacklist=%d", n), func(b *testing.B) {
			e := newEnv(b, nil)
			u := e.signup("ann", "acme")
			e.srv.FillBlacklist(n, e.clock.Now().Unix()+3600)
			postInserts(b, e, u)
		})
	}
}

// fanOut is a set of raw SSE clients that count the messages named event and time them from
// the moment set in t0.
type fanOut struct {
	t0    atomic.Int64 // UnixNano of the last send
	got   atomic.Int64
	mu    sync.Mutex
	lat   []time.Duration
	conns []net.Conn
}

func openFanOut(b *testing.B, addr, path string, n int, event string) *fanOut {
	f := &fanOut{}
	want := []byte("event:" + event)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		f.conns = append(f.conns, c)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", path)
		go func() {
			r := bufio.NewReaderSize(c, 4096)
			var lat []time.Duration
			defer func() { f.mu.Lock(); f.lat = append(f.lat, lat...); f.mu.Unlock() }()
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				if bytes.Equal(bytes.TrimRight(line, "\n"), want) {
					lat = append(lat, time.Duration(time.Now().UnixNano()-f.t0.Load()))
					f.got.Add(1)
				}
			}
		}()
	}
	return f
}

func (f *fanOut) close() {
	for _, c := range f.conns {
		c.Close()
	}
}

func (f *fanOut) wait(b *testing.B, n int64) {
	deadline := time.Now().Add(30 * time.Second)
	for f.got.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries after 30 s", f.got.Load(), n)
		}
		runtime.Gosched()
	}
}

func (f *fanOut) p99() time.Duration {
	time.Sleep(50 * time.Millisecond) // let the readers hand in their samples
	f.close()
	time.Sleep(50 * time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.lat) == 0 {
		return 0
	}
	slices.Sort(f.lat)
	return f.lat[len(f.lat)*99/100]
}

// BenchmarkPushFanOut: POST /v1/messages to one user's 10 devices and to a tenant's 5,000
// streams, next to the same fan-out of an inserted publication: deliveries/s and the p99 of
// the time from the request to a stream reading the message. One message at a time: each
// waits until every stream has it.
func BenchmarkPushFanOut(b *testing.B) {
	for _, c := range []struct {
		name    string
		streams int
		via     string
	}{
		{"user-10-devices/push", 10, "push-user"},
		{"user-10-devices/publication", 10, "insert"},
		{"tenant-5000-streams/push", 5000, "push-tenant"},
		{"tenant-5000-streams/publication", 5000, "insert"},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, nil)
			u := e.signup("ann", "acme")
			addr := strings.TrimPrefix(e.url, "http://")
			f := openFanOut(b, addr, "/sse?token="+u.token, c.streams, "m")
			waitFor(b, "the streams", func() bool { return len(e.srv.Conns()) == c.streams })
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			var path, auth string
			var body []byte
			switch c.via {
			case "push-user":
				path, auth, body = e.iurl+"/v1/messages", "Bearer "+adminToken, []byte(`{"tenant_id":"acme","user":"ann","event":"m","data":{"n":1}}`)
			case "push-tenant":
				path, auth, body = e.iurl+"/v1/messages", "Bearer "+adminToken, []byte(`{"tenant_id":"acme","event":"m","data":{"n":1}}`)
			default:
				path, auth, body = e.url+"/insert", u.bearer(), []byte(`{"event":"m","data":{"n":1},"collection_id":"c"}`)
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				f.t0.Store(time.Now().UnixNano())
				req, _ := http.NewRequest("POST", path, bytes.NewReader(body))
				req.Header.Set("Authorization", auth)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				f.wait(b, int64(i+1)*int64(c.streams))
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*c.streams)/el.Seconds(), "deliveries/s")
			b.ReportMetric(float64(f.p99().Microseconds()), "p99-µs")
		})
	}
}
