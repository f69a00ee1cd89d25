package transport

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestAckOrderUnderMixedWrites: an ack is written either by the connection's writer, from the
// queue, or at once by its reader when the frame was the last one read and the writer is
// idle. Whichever writes it, it must follow the frames its operation routed to the sender
// and precede those of the next operation. A client pipelines acknowledged messages to
// itself in chunks of random sizes, from one frame per write to dozens, so that both paths
// run and meet; it must read message 0, ack 0, message 1, ack 1, and so on.
func TestAckOrderUnderMixedWrites(t *testing.T) {
	const n = 3000
	_, path := testServer(t, Config{})
	r := dialRaw(t, "unix", path)
	if code := r.register("me"); code != 0x01 {
		t.Fatalf("register: %#x", code)
	}
	r.nc.SetDeadline(time.Now().Add(30 * time.Second))
	rng := rand.New(rand.NewPCG(1, 2))
	acked := make(chan int, n) // the ops acknowledged so far, as the reader sees them
	go func() {
		var chunk []byte
		for i := range n {
			qos := byte(1) // processed, batched
			if i%5 == 0 {
				qos = 3 // realtime processed
			}
			chunk = append(chunk, clientHeader(uint32(i+1), opMessage|qos<<6, fmt.Sprintf("me\x00m%d", i))...)
			if rng.IntN(4) != 0 && i < n-1 {
				continue
			}
			if _, err := r.nc.Write(chunk); err != nil {
				return // the reader below reports the failure
			}
			chunk = chunk[:0]
			if rng.IntN(2) == 0 {
				// Wait for the chunk's last ack, as a sequential client would: the broker's
				// writer is then idle when the next chunk comes.
				for a := range acked {
					if a == i {
						break
					}
				}
			}
		}
	}()
	for i := range n {
		hdr, body := r.next()
		if want := fmt.Sprintf("me\x00m%d", i); hdr[0] != 0x12 || string(body) != want {
			t.Fatalf("frame %d: % x %q, want message %q", 2*i, hdr, body, want)
		}
		r.expectAck(uint32(i+1), 0x01)
		acked <- i
	}
}
