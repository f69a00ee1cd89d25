package store_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// crashChildEnv makes the test binary act as the writer process of TestCrash.
const crashChildEnv = "STORE_CRASH_CHILD_DIR"

// TestCrash kills a process that writes to the store with SIGKILL in mid-stream: on reopen
// every acknowledged event is there, every publication it announced is stored published with
// the same Seq, and PublishDue publishes the rest exactly once, with no Seq gap or reuse.
func TestCrash(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}     // tenant/id acknowledged by Insert
	announced := map[string]bool{} // tenant/id/seq announced by OnPublish
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue
		}
		switch f[0] {
		case "ack":
			acked[f[1]+"/"+f[2]] = true
		case "pub":
			announced[f[1]+"/"+f[2]+"/"+f[3]] = true
		}
		if len(acked) == 300 {
			cmd.Process.Kill() // SIGKILL while the writers go on
			break
		}
	}
	cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("child acknowledged only %d inserts", len(acked))
	}

	r := newRecorder(t)
	db := open(t, dir, nil)
	// The recorder starts from the Seqs already stored.
	for _, tenant := range []string{"t0", "t1", "t2"} {
		r.lastSeq[tenant], _ = db.LastSeq(tenant)
	}
	db.Close()
	db = open(t, dir, r)
	defer db.Close()
	for k := range acked {
		tenant, id, _ := strings.Cut(k, "/")
		if _, err := db.Get(tenant, id); err != nil {
			t.Fatalf("acknowledged event %s lost: %v", k, err)
		}
	}
	for k := range announced {
		f := strings.Split(k, "/")
		e, err := db.Get(f[0], f[1])
		if err != nil || !e.Published || fmt.Sprint(e.Seq) != f[2] {
			t.Fatalf("announced %s, stored %+v %v", k, e, err)
		}
	}
	if _, err := db.PublishDue(1 << 40); err != nil {
		t.Fatal(err)
	}
	for _, e := range r.events {
		if announced[fmt.Sprintf("%s/%s/%d", e.TenantID, e.ID, e.Seq)] {
			t.Fatalf("%s published again after the crash", e.ID)
		}
	}
	for _, tenant := range []string{"t0", "t1", "t2"} {
		var want uint64 = 1
		all, _ := db.Collection(tenant, "c")
		last, err := db.Since(tenant, 0, func(e store.Event) error {
			if e.Seq != want {
				return fmt.Errorf("seq %d, want %d", e.Seq, want)
			}
			want++
			return nil
		})
		if err != nil || int(last) != len(all) {
			t.Fatalf("tenant %s: %d publications for %d events: %v", tenant, last, len(all), err)
		}
	}
}

// crashChild inserts events from 4 goroutines (3 of 4 published at once, the others due at
// once and published by PublishDue) until it is killed, printing each acknowledgement and
// publication as it happens.
func crashChild(dir string) {
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(os.Stdout, format, args...) // unbuffered: one write per line
		outMu.Unlock()
	}
	db, err := store.Open(dir, store.Options{OnPublish: func(e store.Event) {
		say("pub %s %s %d\n", e.TenantID, e.ID, e.Seq)
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				tenant := fmt.Sprintf("t%d", (w+i)%3)
				id := fmt.Sprintf("w%d-%d", w, i)
				e := store.Event{ID: id, Event: "n", TenantID: tenant, CollectionID: "c", Timestamp: int64(i),
					Data: json.RawMessage(`{}`)}
				if _, err := db.Insert(e, i%4 != 0); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				say("ack %s %s -\n", tenant, id)
				if i%4 == 0 {
					db.PublishDue(int64(i))
				}
			}
		}()
	}
	go func() { time.Sleep(time.Minute); os.Exit(3) }() // never outlive the parent for long
	wg.Wait()
}
