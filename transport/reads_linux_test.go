//go:build linux

package transport

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rtbus/rtbus/bus"
)

// readCalls returns how many read system calls this process has made (/proc/self/io, all
// threads).
func readCalls(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no read counts here: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "syscr: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("/proc/self/io: %q", s.Text())
			}
			return n
		}
	}
	t.Fatalf("/proc/self/io has no syscr line")
	return 0
}

// TestOneReadPerAck: a sequential sender costs one read at each end per acknowledged frame.
// A reader that reads until the socket is empty, as net.Conn's callers do, costs two at
// each end: the broker's after it has written the ack, the client's after it has read one.
// Broker and client run in this process, so its read count covers both. The best of three
// tries is taken: a round trip slower than the client's confirm delay costs it one more
// read, which a busy machine may cause now and then, and which changes nothing else.
func TestOneReadPerAck(t *testing.T) {
	_, addrs := testListen(t, Config{}, filepath.Join(t.TempDir(), "bus.sock"), "127.0.0.1:0")
	const frames = 2000
	payload := make([]byte, 100)
	for i, addr := range addrs {
		c := dialTest(t, addr, fmt.Sprintf("sequential%d", i))
		best := 1e9
		for range 3 {
			before := readCalls(t)
			for range frames {
				if err := c.Send(bus.QoSProcessed, "nobody", payload); !errors.Is(err, bus.ErrNotRegistered) {
					t.Fatalf("send: %v, want %v", err, bus.ErrNotRegistered)
				}
			}
			best = min(best, float64(readCalls(t)-before)/frames)
		}
		t.Logf("%s: %.2f reads per acknowledged frame", addr, best)
		if best > 2.5 {
			t.Errorf("%s: %.2f reads per acknowledged frame, both ends together; want about 2", addr, best)
		}
	}
}
