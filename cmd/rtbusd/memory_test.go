package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/internal/procstat"
	"github.com/rtbus/rtbus/transport"
)

// TestDaemonMemoryFollowsBytes: a thousand connections over UNIX, TCP and WebSocket each
// announce a frame of the largest size and then trickle its body; a fifth of them first send
// 200 KiB of it at once, more than -incomplete-limit allows them together. The daemon's
// resident memory stays within its idle size plus the connections' own buffers plus twice
// the limit (not the 16 GiB the headers announce), the connections that would pass the limit
// are closed after waiting -timeout, and another client's acknowledged round trips succeed
// throughout.
func TestDaemonMemoryFollowsBytes(t *testing.T) {
	const (
		conns      = 1000
		burstEvery = 5         // every fifth connection sends a burst first
		burst      = 200 << 10 // larger than a connection's own 64 KiB buffer
		limit      = 32 << 20  // -incomplete-limit: room for about 128 of the 200 bursts
		perConn    = 160 << 10 // a connection's own cost: read and write buffers, goroutines
		trickleFor = 3 * time.Second
		waves      = 5
		perWave    = 40
	)
	raiseFileLimit(t, 3*conns)
	bin := buildDaemon(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus.sock")
	tcpAddr, wsAddr := freePort(t), freePort(t)
	d := runDaemon(t, bin, "-B", sock, "-B", tcpAddr, "-B", "ws://"+wsAddr,
		"-timeout", "2s", "-incomplete-limit", strconv.Itoa(limit))
	pid := d.cmd.Process.Pid
	idle := rss(t, pid)

	// The round trips of a well-behaved client, from now to the end.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	probe, err := transport.Dial(ctx, sock, "probe", transport.DialOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	var trips atomic.Int64
	var slowest atomic.Int64
	tripErr := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			start := time.Now()
			if err := probe.Publish(bus.QoSProcessed, "probe", []byte("round trip")); err != nil {
				tripErr <- err
				return
			}
			if d := int64(time.Since(start)); d > slowest.Load() {
				slowest.Store(d)
			}
			trips.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
		tripErr <- nil
	}()

	// Peak resident memory, sampled throughout.
	var peak atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			if r := rss(t, pid); r > peak.Load() {
				peak.Store(r)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// First, waves of connections that announce the largest frame and hang up: a daemon
	// that allocated what headers announce would reuse that memory wave after wave, and so
	// touch all of it.
	for w := range waves {
		var hung []net.Conn
		for i := range perWave {
			nc, err := dialKind(ctx, i%3, sock, tcpAddr, wsAddr)
			if err == nil {
				err = register(nc, fmt.Sprintf("wave%d.%d", w, i))
			}
			if err != nil {
				t.Fatalf("wave %d, connection %d: %v", w, i, err)
			}
			hdr := announce(16 << 20)
			if _, err := nc.Write(append(hdr[:], 'x')); err != nil {
				t.Fatal(err)
			}
			hung = append(hung, nc)
		}
		waitFor(t, "the wave's headers", func() bool { return true })
		time.Sleep(200 * time.Millisecond) // read by the daemon
		for _, nc := range hung {
			nc.Close()
		}
	}

	var wg sync.WaitGroup
	var opened, closed atomic.Int64
	var stop atomic.Int64 // when the hogs stop trickling: trickleFor after the last has come
	stop.Store(math.MaxInt64)
	dials := make(chan int)
	for range 50 { // dialers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range dials {
				nc, err := dialKind(ctx, i%3, sock, tcpAddr, wsAddr)
				if err != nil {
					t.Errorf("connection %d: %v", i, err)
					continue
				}
				if err := register(nc, fmt.Sprintf("hog.%d", i)); err != nil {
					t.Errorf("connection %d: %v", i, err)
					nc.Close()
					continue
				}
				opened.Add(1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer nc.Close()
					if hog(nc, i%burstEvery == 0, burst, &stop) != nil {
						closed.Add(1)
					}
				}()
			}
		}()
	}
	for i := range conns {
		dials <- i
	}
	close(dials)
	waitFor(t, "the connections", func() bool { return opened.Load() == conns || t.Failed() })
	stop.Store(time.Now().Add(trickleFor).UnixNano())
	wg.Wait()
	cancel()
	<-sampled
	if err := <-tripErr; err != nil {
		t.Fatalf("round trip failed while the hogs ran (after %d): %v", trips.Load(), err)
	}
	bound := idle + conns*perConn + 2*limit
	t.Logf("rss: idle %d MiB, peak %d MiB, bound %d MiB; %d connections, %d closed by the daemon; %d round trips, slowest %v",
		idle>>20, peak.Load()>>20, bound>>20, opened.Load(), closed.Load(), trips.Load(), time.Duration(slowest.Load()))
	if opened.Load() != conns {
		t.Fatalf("%d of %d connections registered", opened.Load(), conns)
	}
	if peak.Load() > bound {
		t.Errorf("peak resident memory %d MiB over the bound of %d MiB", peak.Load()>>20, bound>>20)
	}
	if c := closed.Load(); c == 0 || c > conns/burstEvery {
		t.Errorf("%d connections closed, want some of the %d that burst past the limit", c, conns/burstEvery)
	}
	if !strings.Contains(d.logs.String(), "memory for incomplete frames") {
		t.Errorf("no connection dropped for the limit in the log")
	}
	if trips.Load() < 10 {
		t.Errorf("only %d round trips", trips.Load())
	}
	assertServes(t, sock, "after.hogs")
}

// hog announces a frame of the largest size, sends burst bytes of it first if asked, then
// trickles a byte every 100 ms until stop (Unix nanoseconds); it returns the error of a
// write, if the daemon closed the connection.
func hog(nc net.Conn, bursts bool, burst int, stop *atomic.Int64) error {
	hdr := announce(16 << 20)
	start := hdr[:]
	if bursts {
		start = append(start, make([]byte, burst)...)
		start[9] = 'x' // a target name of zero bytes would do as well
	}
	nc.SetWriteDeadline(time.Now().Add(time.Minute))
	if _, err := nc.Write(start); err != nil {
		return err
	}
	for time.Now().UnixNano() < stop.Load() {
		time.Sleep(100 * time.Millisecond)
		if _, err := nc.Write([]byte{'x'}); err != nil {
			return err
		}
	}
	return nil
}

// announce is the header of a p2p message at QoS 1 whose body has size bytes.
func announce(size int) (hdr [9]byte) {
	hdr[4] = 0x12 | 1<<6
	binary.LittleEndian.PutUint32(hdr[5:], uint32(size))
	return hdr
}

// dialKind connects by UNIX socket (kind 0), TCP (1) or WebSocket (2).
func dialKind(ctx context.Context, kind int, sock, tcpAddr, wsAddr string) (net.Conn, error) {
	switch kind {
	case 0:
		return net.Dial("unix", sock)
	case 1:
		return net.Dial("tcp", tcpAddr)
	}
	c, _, err := websocket.Dial(ctx, "ws://"+wsAddr+"/", nil)
	if err != nil {
		return nil, err
	}
	return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
}

// register performs the BUS/RT handshake (WIRE.md §2) as name.
func register(nc net.Conn, name string) error {
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer nc.SetDeadline(time.Time{})
	var b [3]byte
	if _, err := io.ReadFull(nc, b[:3]); err != nil {
		return err
	}
	if _, err := nc.Write(b[:3]); err != nil {
		return err
	}
	if _, err := io.ReadFull(nc, b[:1]); err != nil || b[0] != 0x01 {
		return fmt.Errorf("greeting: %#x, %v", b[0], err)
	}
	msg := binary.LittleEndian.AppendUint16(nil, uint16(len(name)))
	if _, err := nc.Write(append(msg, name...)); err != nil {
		return err
	}
	if _, err := io.ReadFull(nc, b[:1]); err != nil || b[0] != 0x01 {
		return fmt.Errorf("register: %#x, %v", b[0], err)
	}
	return nil
}

// rss is a process's resident memory, in bytes.
func rss(t *testing.T, pid int) int64 {
	n, err := procstat.RSS(pid)
	if err != nil {
		t.Errorf("reading the daemon's memory: %v", err)
	}
	return n
}

// raiseFileLimit raises this process's descriptor limit, which the daemon inherits, to at
// least n where the hard limit allows, and skips nothing: too low a hard limit fails.
func raiseFileLimit(t *testing.T, n uint64) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur >= n {
		return
	}
	if l.Max < n {
		t.Fatalf("descriptor limit %d, need %d", l.Max, n)
	}
	old := l.Cur
	l.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Cur = old
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	})
}
