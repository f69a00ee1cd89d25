// Command roundtrip measures what an acknowledged round trip costs on the machine it runs
// on, with nothing of a broker's work in it: the same frames as `rtbus benchmark -s
// send.qos.processed` (a QoS 1 message of 100 bytes to a missing name, then a 6-byte ack),
// between two processes over a UNIX socket, with a "broker" that does nothing but find each
// frame's end and acknowledge it, through plain net.Conn reads and writes, as most Go
// servers would; with -raw, through raw system calls and reads that wait for readiness, as
// rtbus's transport makes them (linux). bench/roundtrip/tokio is the same on tokio.
//
//	roundtrip -listen /tmp/rt.sock &
//	roundtrip -dial /tmp/rt.sock -w 8 -n 200000 -runs 3
//
// It is a reference side of bench/roundtrip.sh.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"
)

const (
	headerLen = 9 // client → broker frame header (WIRE.md §3)
	ackLen    = 6 // broker → client ack (WIRE.md §4)
)

func main() {
	listen := flag.String("listen", "", "serve acks on this UNIX socket path")
	dial := flag.String("dial", "", "measure against the server on this UNIX socket path")
	workers := flag.Int("w", 8, "workers, each with its own connection and one frame in flight")
	n := flag.Int("n", 200_000, "round trips per run, shared by the workers")
	size := flag.Int("size", 100, "payload bytes")
	runs := flag.Int("runs", 1, "runs; each is printed")
	flag.Parse()
	log.SetFlags(0)
	switch {
	case *listen != "":
		if err := serve(*listen); err != nil {
			log.Fatal(err)
		}
	case *dial != "" && *workers > 0 && *n >= *workers:
		frame := message(*size)
		for r := 1; r <= *runs; r++ {
			rate, err := measure(*dial, *workers, *n, frame)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("run %d: %.0f round trips/s\n", r, rate)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: roundtrip -listen PATH | roundtrip -dial PATH [-w WORKERS] [-n ROUNDTRIPS] [-size BYTES] [-runs N]")
		os.Exit(2)
	}
}

// message is a QoS 1 p2p frame to a name nobody has, as rtbus benchmark sends.
func message(size int) []byte {
	body := append([]byte("nobody\x00"), bytes.Repeat([]byte{0x5a}, size)...)
	f := binary.LittleEndian.AppendUint32(nil, 1)
	f = append(f, 0x12|1<<6)
	f = binary.LittleEndian.AppendUint32(f, uint32(len(body)))
	return append(f, body...)
}

var raw = flag.Bool("raw", false, "raw system calls, and reads as rtbus's transport makes them (linux; both sides)")

func serve(path string) error {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			serveOne := ack
			if *raw {
				serveOne = rawAck
			}
			// A client's end is no news; a peer that is not ours is.
			if err := serveOne(c); errors.Is(err, errNotOurs) {
				fmt.Fprintln(os.Stderr, err)
			}
		}()
	}
}

// ack answers every whole frame read from c with a "not registered" ack carrying its id.
func ack(c net.Conn) error {
	buf := make([]byte, 64<<10)
	var frames frameSplitter
	for {
		k, err := c.Read(buf)
		if err != nil {
			return err
		}
		out, err := frames.acks(buf[:k])
		if err != nil {
			return err
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return err
			}
		}
	}
}

// frameSplitter finds the frames in a stream and makes their acks.
type frameSplitter struct {
	rest []byte // the start of a frame not yet whole
	out  []byte
}

// maxFrame bounds a frame's declared size: the client sends 100 bytes, so a larger one is
// not a frame of ours, and waiting for it would only grow rest.
const maxFrame = 64 << 10

var errNotOurs = errors.New("roundtrip: a frame larger than 64 KiB: not a frame of ours")

// acks returns the acks of the frames that p completes, valid until the next call.
func (f *frameSplitter) acks(p []byte) ([]byte, error) {
	if len(f.rest) > 0 {
		f.rest = append(f.rest, p...)
		p = f.rest
	}
	f.out = f.out[:0]
	for len(p) >= headerLen {
		size := binary.LittleEndian.Uint32(p[5:9])
		if size > maxFrame {
			return nil, errNotOurs
		}
		end := headerLen + int(size)
		if len(p) < end {
			break
		}
		f.out = append(f.out, 0xfe, p[0], p[1], p[2], p[3], 0x71)
		p = p[end:]
	}
	f.rest = append(f.rest[:0], p...)
	return f.out, nil
}

// measure runs n round trips over w connections and returns their rate.
func measure(path string, w, n int, frame []byte) (float64, error) {
	conns := make([]net.Conn, w)
	for i := range conns {
		c, err := net.Dial("unix", path)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[i] = c
	}
	errs := make(chan error, w)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		k := n / w
		if i < n%w {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := plainClient
			if *raw {
				client = rawClient
			}
			if err := client(c, k, frame); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n) / d.Seconds(), nil
}

// plainClient makes k round trips on c through net.Conn.
func plainClient(c net.Conn, k int, frame []byte) error {
	var got [ackLen]byte
	for range k {
		if _, err := c.Write(frame); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, got[:]); err != nil {
			return err
		}
		if got[0] != 0xfe {
			return errors.New("not an ack")
		}
	}
	return nil
}
