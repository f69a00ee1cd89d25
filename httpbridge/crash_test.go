package httpbridge_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rtbus/rtbus/httpbridge"
)

const crashEnv = "HTTPBRIDGE_CRASH_CHILD_DIR"

// crashChild is the child process: a server on the real clock, until it is killed.
func crashChild(t *testing.T, dir string) {
	srv, err := httpbridge.New(nil, httpbridge.Config{DataDir: dir, AdminToken: adminToken, BcryptCost: bcrypt.MinCost, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "addr.tmp"), []byte(ln.Addr().String()), 0o600)
	os.Rename(filepath.Join(dir, "addr.tmp"), filepath.Join(dir, "addr"))
	http.Serve(ln, srv.Handler())
}

// TestCrash: a server inserting events is killed with SIGKILL mid-stream; after a restart on
// its data directory every acknowledged event is present and published exactly once, the
// scheduled ones included, counting what a stream saw before the crash and after resuming.
func TestCrash(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var addr []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if addr, _ = os.ReadFile(filepath.Join(dir, "addr")); len(addr) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child did not start:\n%s", out.String())
		}
	}
	e := &env{t: t, dir: dir, url: "http://" + string(addr), cl: &http.Client{}}
	u := e.signup("ann", "acme")
	st := e.openStream("/sse", u.bearer(), map[string]string{"Last-Event-ID": "0"})

	var mu sync.Mutex
	acked := map[string]int64{} // id -> timestamp
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := map[string]any{"event": "e", "data": i}
				if i%5 == 0 { // some scheduled a moment ahead: due after the restart
					body["timestamp"] = time.Now().Unix() + 2
				}
				b, _ := json.Marshal(body)
				req, _ := http.NewRequest("POST", e.url+"/insert", bytes.NewReader(b))
				req.Header.Set("Authorization", u.bearer())
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var r struct{ Event record }
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if resp.StatusCode == 200 && err == nil {
					mu.Lock()
					acked[r.Event.ID] = r.Event.Timestamp
					mu.Unlock()
				}
			}
		}(w)
	}
	seen := map[string]int{}
	lastID := "0"
	for len(seen) < 40 {
		m := st.next(t)
		seen[m.record(t).ID]++
		lastID = m.id
	}
	cmd.Process.Kill() // SIGKILL, mid-stream
	cmd.Wait()
	close(stop)
	wg.Wait()
	// Whatever the stream had read before the kill counts too.
drain:
	for {
		select {
		case m := <-st.msgs:
			seen[m.record(t).ID]++
			lastID = m.id
		case <-st.done:
			break drain
		}
	}
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	if nAcked < 40 {
		t.Fatalf("only %d inserts acknowledged", nAcked)
	}

	// Restart in-process on the same directory, on the real clock.
	e2 := &env{t: t, dir: dir, cfg: httpbridge.Config{DataDir: dir, AdminToken: adminToken, BcryptCost: bcrypt.MinCost, Logger: quiet}}
	e2.start()
	defer e2.stop()
	tok := e2.expect(e2.do("POST", "/login", "", map[string]string{"username": "ann", "password": "pw-ann"}), 200).field(t, "jwt")
	u.token = tok
	rs := e2.openStream("/sse", u.bearer(), map[string]string{"Last-Event-ID": lastID})
	var latest int64
	for _, ts := range acked {
		latest = max(latest, ts)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		missing := 0
		for id := range acked {
			if seen[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events never published", missing, len(acked))
		}
		select {
		case m := <-rs.msgs:
			seen[m.record(t).ID]++
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Whatever else comes is counted too: an insert the child committed but did not live to
	// acknowledge may be published as well, once like any other.
	for quiet := time.After(200 * time.Millisecond); ; {
		select {
		case m := <-rs.msgs:
			seen[m.record(t).ID]++
			continue
		case <-quiet:
		}
		break
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %s published %d times", id, n)
		}
	}
	// Every acknowledged event is stored, with its publication.
	var ue struct{ Events []record }
	e2.expect(e2.do("GET", "/user_events", u.bearer(), nil), 200).json(t, &ue)
	stored := map[string]bool{}
	for _, r := range ue.Events {
		stored[r.ID] = r.Published
	}
	for id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged event %s lost or unpublished", id)
		}
	}
	t.Logf("%d acknowledged before SIGKILL, %d stored, all published once", len(acked), len(ue.Events))
}
