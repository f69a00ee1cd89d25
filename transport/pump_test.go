package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sockPair returns a sock over the accepted end of a real UNIX socket, and the dialled end.
func sockPair(t *testing.T) (*sock, net.Conn) {
	t.Helper()
	if !rawSockets {
		t.Skip("pump reads through net.Conn on this system")
	}
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := newSock(nc)
	if s.rc == nil {
		t.Fatal("a UNIX socket should be read raw")
	}
	t.Cleanup(func() { s.Close(); peer.Close() })
	return s, peer
}

// pumpAll runs s.pump into a buffer of size, calling each with every read's bytes, and
// returns its error; a pump still running after 10 s fails the test with stuck.
func pumpAll(t *testing.T, s *sock, size int, each func([]byte) stepResult, stuck string) error {
	t.Helper()
	buf := make([]byte, size)
	done := make(chan error, 1)
	go func() {
		done <- s.pump(func() []byte { return buf }, func(n int) stepResult { return each(buf[:n]) })
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal(stuck)
		return nil
	}
}

// TestPumpDataDuringStep: what arrives while a read is handled is read next, although pump
// waits without reading after a short read that was answered. Each chunk is sent only once
// the last one is being handled, and handling lasts a while after that: a pump that lost the
// readiness seen meanwhile would wait forever.
func TestPumpDataDuringStep(t *testing.T) {
	s, peer := sockPair(t)
	const chunks = 50
	handling := make(chan struct{})
	go func() {
		for i := range chunks {
			if i > 0 {
				<-handling
			}
			peer.Write([]byte{byte(i)})
		}
	}()
	var got []byte
	err := pumpAll(t, s, 4096, func(p []byte) stepResult {
		got = append(got, p...)
		if len(got) == chunks {
			return stepStop
		}
		handling <- struct{}{}
		time.Sleep(time.Millisecond) // the next chunk arrives meanwhile
		return stepAnswered
	}, "pump stuck: readiness seen during a step was lost")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if b != byte(i) {
			t.Fatalf("byte %d is %d", i, b)
		}
	}
}

// TestPumpFullReads: a read that fills its buffer is followed by another at once, so that a
// burst larger than the buffer is read whole, and short reads after pauses wait and wake.
func TestPumpFullReads(t *testing.T) {
	s, peer := sockPair(t)
	want := make([]byte, 0, 1<<20)
	for i := range cap(want) {
		want = append(want, byte(i*7))
	}
	go func() {
		peer.Write(want[:len(want)/2]) // one burst, read 16 bytes at a time
		for p := want[len(want)/2:]; len(p) > 0; p = p[min(len(p), 100000):] {
			time.Sleep(5 * time.Millisecond)
			peer.Write(p[:min(len(p), 100000)])
		}
		peer.Close()
	}()
	var got []byte
	err := pumpAll(t, s, 16, func(p []byte) stepResult {
		got = append(got, p...)
		return stepMore
	}, "pump stuck: a full read was not followed by another")
	if err != io.EOF {
		t.Fatalf("pump ended with %v, want EOF", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d, first difference at %d", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSockCloseInStep: closing a sock while handling one of its reads, on the same goroutine,
// neither deadlocks nor lets pump read on, and the peer sees the connection end.
func TestSockCloseInStep(t *testing.T) {
	s, peer := sockPair(t)
	peer.Write([]byte("a"))
	go func() { // more data behind: pump must not read it after the Close
		time.Sleep(10 * time.Millisecond)
		peer.Write(make([]byte, 1<<16))
	}()
	reads := 0
	err := pumpAll(t, s, 4096, func(p []byte) stepResult {
		reads++
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		time.Sleep(20 * time.Millisecond)
		return stepMore
	}, "pump stuck after Close in a step")
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("pump ended with %v, want net.ErrClosed", err)
	}
	if reads != 1 {
		t.Fatalf("%d reads handled, want 1: pump read on after Close", reads)
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	// EOF, or a reset for the data left unread: the connection ended either way.
	if _, err := peer.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("peer read %v, want the connection ended", err)
	}
}

// TestSockCloseWhileReading: a Close from another goroutine while a full read is handled
// returns at once, and pump handles no read after it, although more data is there.
func TestSockCloseWhileReading(t *testing.T) {
	s, peer := sockPair(t)
	go peer.Write(make([]byte, 1<<16)) // reads of 512 bytes fill their buffer
	started, closed := make(chan struct{}), make(chan struct{})
	go func() {
		<-started
		s.Close()
		close(closed)
	}()
	reads := 0
	pumpAll(t, s, 512, func([]byte) stepResult {
		reads++
		if reads == 1 {
			close(started)
			<-closed // Close returns while the read is handled
		}
		return stepMore
	}, "Close or pump stuck")
	if reads != 1 {
		t.Fatalf("%d reads handled, want 1: pump read on after Close", reads)
	}
}

// TestPumpDeadline: a read deadline ends a waiting pump with os.ErrDeadlineExceeded.
func TestPumpDeadline(t *testing.T) {
	s, peer := sockPair(t)
	peer.Write([]byte("x")) // one short read, answered: pump then waits without reading
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	err := pumpAll(t, s, 4096, func([]byte) stepResult { return stepAnswered }, "deadline did not end pump")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("pump ended with %v, want a deadline error", err)
	}
}

// TestPumpEndBehindData: a peer that sends and hangs up before the read is seen to end at
// once, whether the read is answered or not. With no answer, the end is found by one more
// read, at once or after confirm; with one, the answer fails and the handler closes, as the
// broker's reader does.
func TestPumpEndBehindData(t *testing.T) {
	for _, c := range []struct {
		answer  bool
		confirm time.Duration
	}{{false, 0}, {true, 0}, {false, time.Millisecond}} {
		answer := c.answer
		s, peer := sockPair(t)
		s.confirm = c.confirm
		peer.Write([]byte("last words"))
		peer.Close()
		time.Sleep(10 * time.Millisecond) // both arrive before the first read
		err := pumpAll(t, s, 4096, func([]byte) stepResult {
			if !answer {
				return stepQuiet
			}
			if _, err := s.Write([]byte{0}); err != nil {
				s.Close()
			}
			return stepAnswered
		}, fmt.Sprintf("answer %v, confirm %v: the end of the connection was missed", answer, c.confirm))
		if want := map[bool]error{false: io.EOF, true: net.ErrClosed}[answer]; !errors.Is(err, want) {
			t.Fatalf("answer %v: pump ended with %v, want %v", answer, err, want)
		}
	}
}

// TestPumpConfirmLeavesNoDeadline: the deadline that bounds a wait skipping a read is gone
// once it has served, so that a quiet spell longer than it ends nothing.
func TestPumpConfirmLeavesNoDeadline(t *testing.T) {
	s, peer := sockPair(t)
	s.confirm = time.Millisecond
	go func() {
		peer.Write([]byte("a"))
		time.Sleep(50 * time.Millisecond)
		peer.Write([]byte("b"))
		time.Sleep(50 * time.Millisecond)
		peer.Close()
	}()
	var got []byte
	err := pumpAll(t, s, 4096, func(p []byte) stepResult {
		got = append(got, p...)
		return stepQuiet
	}, "pump stuck")
	if err != io.EOF || string(got) != "ab" {
		t.Fatalf("pump read %q and ended with %v, want \"ab\" and EOF", got, err)
	}
}

// TestBrokerSeesHangUpBehindLastFrame: a client that sends a frame and hangs up at once is
// unregistered at once, not at the next ping, whether its frame is acknowledged (the ack
// written to the gone peer fails, or draws a reset) or not (the reader reads once more). The
// pings and the idle timeout are seconds away, so only the reader can notice in time.
func TestBrokerSeesHangUpBehindLastFrame(t *testing.T) {
	b, addrs := testListen(t, Config{Timeout: 10 * time.Second},
		filepath.Join(t.TempDir(), "bus.sock"), "127.0.0.1:0")
	for i, addr := range addrs {
		network := map[int]string{0: "unix", 1: "tcp"}[i]
		for _, qos := range []byte{0, 1} {
			name := fmt.Sprintf("quitter.%s.%d", network, qos)
			r := dialRaw(t, network, addr)
			if code := r.register(name); code != 0x01 {
				t.Fatalf("register %s: %#x", name, code)
			}
			r.write(clientFrame(1, opMessage|qos<<6, "nobody\x00bye")...)
			r.nc.Close()
			deadline := time.Now().Add(3 * time.Second)
			for registered(b, name) {
				if time.Now().After(deadline) {
					t.Fatalf("%s still registered 3 s after it hung up", name)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}

// TestSockWrite: a write larger than the socket's buffers arrives whole and in order, the
// writer waiting while the socket is full; a write that cannot drain before the deadline
// fails with os.ErrDeadlineExceeded, and one to a peer that has gone fails.
func TestSockWrite(t *testing.T) {
	s, peer := sockPair(t)
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i * 7 >> 3)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big))))
		got <- b
	}()
	if n, err := s.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write: %d, %v; want %d, nil", n, err, len(big))
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, first difference at %d", len(b), firstDiff(b, big))
	}

	s.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := s.Write(big) // nobody reads now
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == len(big) {
		t.Fatalf("Write to a full socket: %d, %v; want part of %d written and %v", n, err, len(big), os.ErrDeadlineExceeded)
	}

	s.SetWriteDeadline(time.Time{})
	peer.Close()
	if _, err := s.Write([]byte("hello")); err == nil {
		t.Fatal("Write to a peer that has gone succeeded")
	}
}
