// Command gwload measures rtbusd's front-end streams over each transport (sse, ws, poll)
// with the method and the figures of ../shared/bench/sseload, so that the three can be
// compared with each other and with sseload's refsse in the same run (bench/gateway.sh).
//
// Fan-out (default): it signs up a user in a fresh tenant, opens -subs streams of
// -transport to it, publishes warm-up probes until every stream saw one, then inserts -msgs
// events of about -size bytes (closed loop with -pubconc publishers, or -rate per second)
// and prints delivered events/s and insert→receive latency percentiles, one JSON line with
// -json (the fields of sseload's). Each payload carries its send time; a receiver finds it
// in the event record, whatever the transport's framing.
//
// Idle memory (-idle N -pid PID): opens N streams over raw TCP (WebSocket handshake or SSE
// request; the client reads nothing more), and prints the growth of the server's resident
// memory per stream.
//
// Loopback only; every run is bounded by -timeout.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	base, transport   string
	subs, msgs, size  int
	pubconc, connconc int
	rate              float64
	timeout, drain    time.Duration
	warmup            time.Duration
	jsonOut           bool
	idle, pid         int
}

type result struct {
	Target       string  `json:"target"`
	Subs         int     `json:"subs"`
	Msgs         int     `json:"msgs"`
	Size         int     `json:"size"`
	Rate         float64 `json:"rate_limit"`
	ConnectSecs  float64 `json:"connect_s"`
	Expected     int64   `json:"expected"`
	Delivered    int64   `json:"delivered"`
	PubErrors    int64   `json:"pub_errors"`
	SubErrors    int64   `json:"sub_errors"`
	PubPerSec    float64 `json:"pub_per_s"`
	DeliverSecs  float64 `json:"deliver_s"`
	EventsPerSec float64 `json:"events_per_s"`
	LatP50us     float64 `json:"lat_p50_us"`
	LatP90us     float64 `json:"lat_p90_us"`
	LatP99us     float64 `json:"lat_p99_us"`
	LatMaxus     float64 `json:"lat_max_us"`
	LoadgenCPU   float64 `json:"loadgen_cpu_s"`
	Polls        int64   `json:"polls,omitempty"` // long-polling: requests, the first ones included
	TimedOut     bool    `json:"timed_out"`
	Warmup       bool    `json:"warmup_timeout"`
}

func main() {
	var c config
	flag.StringVar(&c.base, "base", "http://127.0.0.1:8080", "rtbusd's HTTP bridge (loopback only)")
	flag.StringVar(&c.transport, "transport", "ws", "sse | ws | poll")
	flag.IntVar(&c.subs, "subs", 1000, "streams")
	flag.IntVar(&c.msgs, "msgs", 1000, "measured inserts")
	flag.IntVar(&c.size, "size", 128, "approximate payload size in bytes")
	flag.IntVar(&c.pubconc, "pubconc", 4, "concurrent publishers (closed loop)")
	flag.IntVar(&c.connconc, "connconc", 64, "concurrent stream dials during setup")
	flag.Float64Var(&c.rate, "rate", 0, "inserts per second (0: closed loop)")
	flag.DurationVar(&c.timeout, "timeout", 180*time.Second, "hard deadline of the run")
	flag.DurationVar(&c.drain, "drain", 20*time.Second, "longest wait for deliveries after the last insert")
	flag.DurationVar(&c.warmup, "warmup", 60*time.Second, "longest wait for every stream to see a probe")
	flag.BoolVar(&c.jsonOut, "json", false, "print one JSON line")
	flag.IntVar(&c.idle, "idle", 0, "idle memory mode: open this many streams over raw TCP and report the server's RSS growth")
	flag.IntVar(&c.pid, "pid", 0, "idle mode: the server's pid (its /proc/PID/status)")
	flag.Parse()
	u, err := url.Parse(c.base)
	if err != nil || (u.Hostname() != "localhost" && !net.ParseIP(u.Hostname()).IsLoopback()) {
		fmt.Fprintln(os.Stderr, "gwload: -base must be a loopback URL")
		os.Exit(2)
	}
	if c.transport != "sse" && c.transport != "ws" && c.transport != "poll" {
		fmt.Fprintln(os.Stderr, "gwload: -transport is sse, ws or poll")
		os.Exit(2)
	}
	if c.idle > 0 {
		if err := idleStreams(&c); err != nil {
			fmt.Fprintln(os.Stderr, "gwload:", err)
			os.Exit(1)
		}
		return
	}
	r, err := run(&c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gwload:", err)
		os.Exit(1)
	}
	if c.jsonOut {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
		return
	}
	fmt.Printf("%s: %d streams, %d inserts: %.0f events/s, latency p50 %.2f ms p99 %.2f ms, delivered %d/%d\n",
		r.Target, r.Subs, r.Msgs, r.EventsPerSec, r.LatP50us/1000, r.LatP99us/1000, r.Delivered, r.Expected)
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}, Timeout: 30 * time.Second}

// signup makes a user in a fresh tenant and returns its tenant and token.
func signup(base string) (tenant, token string, err error) {
	name := fmt.Sprintf("gw%d-%d", os.Getpid(), time.Now().UnixNano())
	tenant = "tenant-" + name
	body := fmt.Sprintf(`{"username":%q,"password":"bench-password","tenant_id":%q}`, name, tenant)
	resp, err := client.Post(base+"/users", "application/json", strings.NewReader(body))
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	resp, err = client.Post(base+"/login", "application/json", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":"bench-password"}`, name)))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var out struct{ JWT string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.JWT == "" {
		return "", "", fmt.Errorf("login: %v (status %d)", err, resp.StatusCode)
	}
	return tenant, out.JWT, nil
}

// sub is one stream's receiver.
type sub struct {
	ready    atomic.Bool
	lats     []int32
	lastRecv atomic.Int64
}

var marker = []byte(`"lg":"`)

// scan counts the payloads in b (any framing: an SSE data line, a WebSocket frame, a poll
// reply).
func (s *sub) scan(b []byte, ready, delivered *atomic.Int64) {
	for {
		i := bytes.Index(b, marker)
		if i < 0 {
			return
		}
		b = b[i+len(marker):]
		j := bytes.IndexByte(b, '"')
		if j < 0 {
			return
		}
		tok := b[:j]
		b = b[j:]
		now := time.Now().UnixNano()
		if len(tok) > 0 && tok[0] == 'w' {
			if !s.ready.Swap(true) {
				ready.Add(1)
			}
			continue
		}
		dot := bytes.IndexByte(tok, '.')
		if dot < 0 {
			continue
		}
		sent, err := strconv.ParseInt(string(tok[dot+1:]), 10, 64)
		if err != nil {
			continue
		}
		s.lats = append(s.lats, int32((now-sent)/1000))
		s.lastRecv.Store(now)
		delivered.Add(1)
	}
}

func run(c *config) (result, error) {
	res := result{Target: "rtbusd-" + c.transport, Subs: c.subs, Msgs: c.msgs, Size: c.size, Rate: c.rate}
	tenant, token, err := signup(c.base)
	if err != nil {
		return res, err
	}
	cpu0 := cpuSecs()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	subCtx, subCancel := context.WithCancel(ctx)
	defer subCancel()
	subTr := &http.Transport{MaxIdleConnsPerHost: c.subs + 16, DisableCompression: true}
	subClient := &http.Client{Transport: subTr}
	var ready, connected, subErrs, delivered atomic.Int64
	subs := make([]*sub, c.subs)
	sem := make(chan struct{}, c.connconc)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range subs {
		s := &sub{lats: make([]int32, 0, c.msgs)}
		subs[i] = s
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := stream(subCtx, c, subClient, tenant, token, s, func() { <-sem; connected.Add(1) }, &ready, &delivered)
			if err != nil && subCtx.Err() == nil {
				if subErrs.Add(1) <= 3 {
					fmt.Fprintln(os.Stderr, "stream:", err)
				}
			}
		}()
	}
	for connected.Load()+subErrs.Load() < int64(c.subs) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	res.ConnectSecs = time.Since(t0).Seconds()
	live := connected.Load() - subErrs.Load()

	insert := func(payload string) error {
		req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/insert",
			strings.NewReader(`{"event":"bench","collection_id":"bench","data":`+payload+`}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("insert: status %d", resp.StatusCode)
		}
		return nil
	}
	wdl := time.Now().Add(c.warmup)
	for ready.Load() < live && time.Now().Before(wdl) && ctx.Err() == nil {
		insert(fmt.Sprintf(`{"lg":"w.%d"}`, time.Now().UnixNano()))
		time.Sleep(100 * time.Millisecond)
	}
	res.Warmup = ready.Load() < live
	time.Sleep(100 * time.Millisecond)

	pad := strings.Repeat("x", max(0, c.size-len(`{"lg":"1234567.1700000000000000000","p":""}`)))
	var seq, pubErrs atomic.Int64
	jobs := make(chan struct{}, 1024)
	pubStart := time.Now()
	var pwg sync.WaitGroup
	for range c.pubconc {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for {
				if c.rate > 0 {
					if _, ok := <-jobs; !ok {
						return
					}
				}
				n := seq.Add(1) - 1
				if n >= int64(c.msgs) || ctx.Err() != nil {
					return
				}
				p := `{"lg":"` + strconv.FormatInt(n, 10) + "." + strconv.FormatInt(time.Now().UnixNano(), 10) + `","p":"` + pad + `"}`
				if err := insert(p); err != nil {
					if pubErrs.Add(1) <= 3 {
						fmt.Fprintln(os.Stderr, err)
					}
				}
			}
		}()
	}
	if c.rate > 0 {
		interval := time.Duration(float64(time.Second) / c.rate)
		next := time.Now()
		for i := 0; i < c.msgs && ctx.Err() == nil; i++ {
			time.Sleep(time.Until(next))
			jobs <- struct{}{}
			next = next.Add(interval)
		}
		close(jobs)
	}
	pwg.Wait()
	res.PubErrors = pubErrs.Load()
	res.PubPerSec = float64(c.msgs) / time.Since(pubStart).Seconds()
	want := live * (int64(c.msgs) - res.PubErrors)
	ddl := time.Now().Add(c.drain)
	for delivered.Load() < want && time.Now().Before(ddl) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	res.TimedOut = delivered.Load() < want
	subCancel()
	subTr.CloseIdleConnections()
	wg.Wait()

	res.Expected, res.Delivered, res.SubErrors = live*int64(c.msgs), delivered.Load(), subErrs.Load()
	var last int64
	var all []int32
	for _, s := range subs {
		all = append(all, s.lats...)
		last = max(last, s.lastRecv.Load())
	}
	if last > 0 {
		res.DeliverSecs = float64(last-pubStart.UnixNano()) / 1e9
		res.EventsPerSec = float64(res.Delivered) / res.DeliverSecs
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(float64(len(all)-1)*p)])
	}
	res.LatP50us, res.LatP90us, res.LatP99us, res.LatMaxus = pct(0.5), pct(0.9), pct(0.99), pct(1)
	res.LoadgenCPU = cpuSecs() - cpu0
	res.Polls = polls.Load()
	return res, nil
}

// stream runs one receiver until ctx ends; connected is called once the stream is open.
func stream(ctx context.Context, c *config, hc *http.Client, tenant, token string, s *sub, connected func(), ready, delivered *atomic.Int64) error {
	q := "?token=" + url.QueryEscape(token)
	switch c.transport {
	case "ws":
		return wsStream(ctx, c, tenant, q, s, connected, ready, delivered)
	case "sse":
		req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/events/"+url.PathEscape(tenant)+q, nil)
		resp, err := hc.Do(req)
		connected()
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		buf := make([]byte, 64<<10)
		var rest []byte
		for {
			n, err := resp.Body.Read(buf)
			// Scan whole lines only: a marker may straddle two reads.
			data := append(rest, buf[:n]...)
			if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
				s.scan(data[:i], ready, delivered)
				rest = append(rest[:0], data[i+1:]...)
			} else {
				rest = data
			}
			if err != nil {
				return nil
			}
		}
	}
	return pollStream(ctx, c, tenant, q, s, connected, ready, delivered)
}

// wsStream reads one WebSocket stream over a connection of its own: the handshake, then
// frames read from the socket straight into one buffer (pings answered). The
// coder/websocket client (a reader and a context callback per message) cost about a fifth
// more CPU per message than the SSE client, and the two share the cores with the server:
// in a closed-loop run the slower load meant fewer publications per second, so fewer
// messages waiting for each stream's write, more writes per message, and more server CPU
// per message, which was then charged to the WebSocket transport.
func wsStream(ctx context.Context, c *config, tenant, q string, s *sub, connected func(), ready, delivered *atomic.Int64) error {
	u, _ := url.Parse(c.base)
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		connected()
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var key [16]byte
	rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	fmt.Fprintf(conn, "GET /ws/%s%s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", url.PathEscape(tenant), q, u.Host, k)
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	connected()
	if err != nil {
		return err
	}
	sum := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return fmt.Errorf("handshake: status %d", resp.StatusCode)
	}
	var hd [8]byte
	buf := make([]byte, 0, 4<<10)
	for {
		if _, err := io.ReadFull(br, hd[:2]); err != nil {
			return nil
		}
		fin, op, n := hd[0]&0x80 != 0, hd[0]&0x0f, uint64(hd[1]&0x7f)
		if hd[1]&0x80 != 0 || !fin {
			return errors.New("ws: masked or fragmented server frame")
		}
		switch n {
		case 126:
			if _, err := io.ReadFull(br, hd[:2]); err != nil {
				return nil
			}
			n = uint64(binary.BigEndian.Uint16(hd[:2]))
		case 127:
			if _, err := io.ReadFull(br, hd[:8]); err != nil {
				return nil
			}
			n = binary.BigEndian.Uint64(hd[:8])
		}
		if n > 1<<20 {
			return fmt.Errorf("ws: %d-byte frame", n)
		}
		buf = slices.Grow(buf[:0], int(n))[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil
		}
		switch op {
		case 0x1: // text: one message
			s.scan(buf, ready, delivered)
		case 0x9: // ping: a masked pong with its payload (mask 0: the payload as is)
			if _, err := conn.Write(append([]byte{0x8a, 0x80 | byte(n), 0, 0, 0, 0}, buf...)); err != nil {
				return nil
			}
		case 0x8:
			return nil
		}
	}
}

// pollStream long-polls over one keep-alive HTTP/1.1 connection of its own, each poll with
// the cursor and connection id of the last reply. It writes each request whole and reads
// each reply by its Content-Length into one buffer: net/http's client (a request, a
// goroutine hand-off each way and a body per poll) cost more CPU per poll than the server
// it measures, with which it shares the cores.
func pollStream(ctx context.Context, c *config, tenant, q string, s *sub, connected func(), ready, delivered *atomic.Int64) error {
	u, _ := url.Parse(c.base)
	first := true
	defer func() {
		if first {
			connected()
		}
	}()
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	head := "GET /poll/" + url.PathEscape(tenant) + q
	tail := " HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n"
	br := bufio.NewReaderSize(conn, 16<<10)
	var req, body []byte
	cursor, connID := "", ""
	for ctx.Err() == nil {
		req = append(req[:0], head...)
		if cursor != "" {
			req = append(req, "&last_event_id="...)
			req = append(req, cursor...)
			req = append(req, "&conn="...)
			req = append(req, connID...)
		}
		req = append(req, tail...)
		polls.Add(1)
		_, err := conn.Write(req)
		var status int
		if err == nil {
			status, body, err = readReply(br, body[:0])
		}
		if first {
			connected()
			first = false
		}
		if err != nil || status != 200 {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("poll: status %d %v", status, err)
		}
		// The reply ends with "last_event_id":"N","conn":"ID"}: read those from the end.
		i := bytes.LastIndex(body, []byte(`],"last_event_id":"`))
		if i < 0 {
			return errors.New("poll: reply without a cursor")
		}
		s.scan(body[:i], ready, delivered)
		rest := body[i+len(`],"last_event_id":"`):]
		j := bytes.IndexByte(rest, '"')
		k := bytes.Index(rest, []byte(`"conn":"`))
		if j < 0 || k < 0 {
			return fmt.Errorf("poll: reply tail %q", rest)
		}
		conns := rest[k+len(`"conn":"`):]
		l := bytes.IndexByte(conns, '"')
		if l < 0 {
			return fmt.Errorf("poll: reply tail %q", rest)
		}
		if string(rest[:j]) != cursor {
			cursor = string(rest[:j])
		}
		if string(conns[:l]) != connID {
			connID = string(conns[:l])
		}
	}
	return nil
}

// readReply reads one HTTP/1.1 response with a Content-Length and appends its body to b.
func readReply(br *bufio.Reader, b []byte) (status int, body []byte, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, b, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, b, fmt.Errorf("bad status line %q", line)
	}
	status, _ = strconv.Atoi(string(line[9:12]))
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return status, b, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return status, b, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if n < 0 {
		return status, b, errors.New("reply without a Content-Length")
	}
	b = slices.Grow(b, n)[:n]
	_, err = io.ReadFull(br, b)
	return status, b, err
}

var polls atomic.Int64

func cpuSecs() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
