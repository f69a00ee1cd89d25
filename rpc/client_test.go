package rpc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/bus"
	"github.com/rtbus/rtbus/rpc"
)

func echoServer(t *testing.T, e *env, name string) *rpc.Client {
	s := e.rpc(t, name)
	s.Handle("echo", func(_ context.Context, r rpc.Request) ([]byte, error) { return r.Params, nil })
	s.Handle("whoami", func(_ context.Context, r rpc.Request) ([]byte, error) { return []byte(r.Sender), nil })
	return s
}

func TestCall(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		s := echoServer(t, e, "server")
		s.Handle("fail", func(context.Context, rpc.Request) ([]byte, error) {
			return nil, &rpc.Error{Code: -32099, Data: []byte{0xa3, 'b', 'a', 'd'}}
		})
		s.Handle("denied", func(context.Context, rpc.Request) ([]byte, error) {
			return nil, fmt.Errorf("wrapped: %w", bus.ErrAccessDenied)
		})
		s.Handle("plain", func(context.Context, rpc.Request) ([]byte, error) { return nil, errors.New("disk on fire") })
		s.Handle("panic", func(context.Context, rpc.Request) ([]byte, error) { panic("boom") })
		s.Handle("empty", func(context.Context, rpc.Request) ([]byte, error) { return nil, nil })
		c := e.rpc(t, "caller")
		ctx := ctxT(t)

		res, err := c.Call(ctx, "server", "echo", []byte("hello"))
		if err != nil || string(res) != "hello" {
			t.Fatalf("echo = %q, %v", res, err)
		}
		if res, err = c.Call(ctx, "server", "empty", nil); err != nil || len(res) != 0 {
			t.Fatalf("empty = %q, %v", res, err)
		}

		_, err = c.Call(ctx, "server", "fail", nil)
		var re *rpc.Error
		if !errors.As(err, &re) || re.Code != -32099 || !bytes.Equal(re.Data, []byte{0xa3, 'b', 'a', 'd'}) {
			t.Fatalf("fail: %v (%#v)", err, re)
		}
		if !errors.Is(err, &rpc.Error{Code: -32099}) || errors.Is(err, &rpc.Error{Code: -32098}) {
			t.Errorf("errors.Is by code does not work on %v", err)
		}

		_, err = c.Call(ctx, "server", "denied", nil)
		if !errors.As(err, &re) || re.Code != -32121 || !errors.Is(err, bus.ErrAccessDenied) {
			t.Errorf("bus error from a handler: %v", err)
		}
		_, err = c.Call(ctx, "server", "plain", nil)
		if !errors.As(err, &re) || re.Code != rpc.CodeInternal || string(re.Data) != "disk on fire" {
			t.Errorf("plain error: %v", err)
		}
		_, err = c.Call(ctx, "server", "panic", nil)
		if !errors.Is(err, &rpc.Error{Code: rpc.CodeInternal}) {
			t.Errorf("panicking handler: %v", err)
		}
		_, err = c.Call(ctx, "server", "nope", nil)
		if !errors.Is(err, &rpc.Error{Code: rpc.CodeMethodNotFound}) {
			t.Errorf("unknown method: %v", err)
		}

		// A fallback takes the methods without a handler; Method tells which was called.
		s.HandleFallback(func(_ context.Context, r rpc.Request) ([]byte, error) { return []byte("fb:" + r.Method), nil })
		if res, err = c.Call(ctx, "server", "nope", nil); err != nil || string(res) != "fb:nope" {
			t.Errorf("fallback = %q, %v", res, err)
		}
		s.Handle("echo", nil) // removed: the fallback answers
		if res, err = c.Call(ctx, "server", "echo", nil); err != nil || string(res) != "fb:echo" {
			t.Errorf("removed handler = %q, %v", res, err)
		}
	})
}

func TestCallUnregisteredTarget(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		c := e.rpc(t, "caller")
		// The routing result fails the call, not its context (which would say it waited).
		_, err := c.Call(ctxT(t), "nobody", "x", nil)
		var re *rpc.Error
		if !errors.As(err, &re) || re.Code != -32113 {
			t.Fatalf("err = %v", err)
		}
		if !errors.Is(err, bus.ErrNotRegistered) {
			t.Errorf("%v does not match bus.ErrNotRegistered", err)
		}
		if err := c.Call0("nobody", "x", nil); !errors.Is(err, bus.ErrNotRegistered) {
			t.Errorf("call0: %v", err)
		}
		if err := c.Notify("nobody", nil); !errors.Is(err, bus.ErrNotRegistered) {
			t.Errorf("notify: %v", err)
		}
	})
}

func TestNotificationsAndCall0(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		s := echoServer(t, e, "server")
		notes := make(chan rpc.Notification, 1)
		s.HandleNotification(func(n rpc.Notification) { notes <- n })
		reqs := make(chan rpc.Request, 1)
		s.Handle("job", func(_ context.Context, r rpc.Request) ([]byte, error) {
			reqs <- r
			return []byte("ignored"), nil
		})
		c := e.rpc(t, "caller")
		if err := c.Notify("server", []byte("tick")); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-notes:
			if n.Sender != "caller" || string(n.Data) != "tick" {
				t.Errorf("notification %+v", n)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no notification")
		}
		if err := c.Call0("server", "job", []byte("p")); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-reqs:
			if !r.NoReply || r.Method != "job" || string(r.Params) != "p" || r.Sender != "caller" {
				t.Errorf("call0 request %+v", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("call0 not handled")
		}
		// The call0 got no reply: the next call's answer is the first thing the caller sees.
		if res, err := c.Call(ctxT(t), "server", "echo", []byte("after")); err != nil || string(res) != "after" {
			t.Fatalf("after call0: %q %v", res, err)
		}
	})
}

func TestPublicationsGoToFrameHandler(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		c := e.rpc(t, "listener")
		frames := make(chan bus.Frame, 2)
		c.HandleFrame(func(f bus.Frame) { frames <- f })
		if err := c.Conn().Subscribe(bus.QoSProcessed, "news/#"); err != nil {
			t.Fatal(err)
		}
		p := e.conn(t, "pub")
		p.Publish(bus.QoSProcessed, "news/a", []byte("x"))
		p.Broadcast(bus.QoSProcessed, "listener", []byte("y"))
		for _, want := range []bus.Kind{bus.KindPublish, bus.KindBroadcast} {
			select {
			case f := <-frames:
				if f.Kind != want || f.Sender != "pub" {
					t.Errorf("frame %+v, want kind %v", f, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %v frame", want)
			}
		}
	})
}

func TestSecondariesGetTheirOwnReplies(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		echoServer(t, e, "server")
		callers := []*rpc.Client{e.rpc(t, "app"), e.rpc(t, "app%%1"), e.rpc(t, "app%%2")}
		var wg sync.WaitGroup
		for _, c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					res, err := c.Call(ctxT(t), "server", "whoami", nil)
					if err != nil || string(res) != c.Name() {
						t.Errorf("%s got %q, %v", c.Name(), res, err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

func TestManyConcurrentCalls(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		s := echoServer(t, e, "server")
		// A slow method in flight must not hold up the others.
		release := make(chan struct{})
		s.Handle("slow", func(ctx context.Context, r rpc.Request) ([]byte, error) {
			<-release
			return []byte("late"), nil
		})
		c := e.rpc(t, "caller")
		slow := make(chan error, 1)
		go func() {
			_, err := c.Call(ctxT(t), "server", "slow", nil)
			slow <- err
		}()
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 100 {
					p := fmt.Appendf(nil, "%d/%d", g, i)
					res, err := c.Call(ctxT(t), "server", "echo", p)
					if err != nil || !bytes.Equal(res, p) {
						t.Errorf("call %s: %q, %v", p, res, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(release)
		if err := <-slow; err != nil {
			t.Errorf("slow call: %v", err)
		}
	})
}

func TestCancelledCallFreesItsSlot(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		s := echoServer(t, e, "server")
		release := make(chan struct{})
		handled := make(chan struct{}, 1)
		s.Handle("slow", func(ctx context.Context, r rpc.Request) ([]byte, error) {
			<-release
			handled <- struct{}{}
			return []byte("late"), nil
		})
		c := e.rpc(t, "caller")
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.Call(ctx, "server", "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		// An already cancelled context sends nothing.
		if _, err := c.Call(ctx, "server", "echo", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		close(release)
		<-handled
		// The late reply is dropped quietly; the next call gets its own answer.
		for i := range 3 {
			p := []byte{byte(i)}
			if res, err := c.Call(ctxT(t), "server", "echo", p); err != nil || !bytes.Equal(res, p) {
				t.Fatalf("after cancel: %q, %v", res, err)
			}
		}
	})
}

func TestTargetDisconnectsMidCall(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		s := echoServer(t, e, "server")
		started := make(chan struct{})
		s.Handle("hang", func(ctx context.Context, r rpc.Request) ([]byte, error) {
			close(started)
			<-ctx.Done() // the server's context ends when it stops
			return nil, ctx.Err()
		})
		c := e.rpc(t, "caller")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := c.Call(ctx, "server", "hang", nil)
			done <- err
		}()
		<-started
		s.Close()
		// Nothing tells a caller that its target went away: the call ends with its context.
		if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		// A socket client's departure reaches the broker a moment later.
		deadline := time.Now().Add(10 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, err := c.Call(ctx, "server", "echo", nil)
			cancel()
			if errors.Is(err, bus.ErrNotRegistered) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("call after the target left: %v", err)
			}
		}
	})
}

func TestCallerDisconnectFailsPendingCalls(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		s := echoServer(t, e, "server")
		var once sync.Once
		started := make(chan struct{})
		s.Handle("hang", func(ctx context.Context, r rpc.Request) ([]byte, error) {
			once.Do(func() { close(started) })
			<-ctx.Done()
			return nil, ctx.Err()
		})
		c := e.rpc(t, "caller")
		const n = 5
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := c.Call(context.Background(), "server", "hang", nil)
				errs <- err
			}()
		}
		<-started
		time.Sleep(50 * time.Millisecond) // let every call get on its way
		if err := e.b.ForceDisconnect("caller"); err != nil {
			t.Fatal(err)
		}
		for range n {
			select {
			case err := <-errs:
				if !errors.Is(err, rpc.ErrClientClosed) || !errors.Is(err, bus.ErrClosed) {
					t.Errorf("pending call ended with %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("pending call not failed")
			}
		}
		<-c.Done()
		if _, err := c.Call(ctxT(t), "server", "echo", nil); !errors.Is(err, rpc.ErrClientClosed) {
			t.Errorf("call after disconnect: %v", err)
		}
	})
}

// A raw bus client stands in for a caller so that the reply frame itself can be checked.
func TestReplyFrameLayoutAndQoS(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		echoServer(t, e, "server")
		raw := e.conn(t, "raw")
		for _, qos := range []bus.QoS{bus.QoSProcessed, bus.QoSRealtimeProcessed, bus.QoSNo} {
			req := []byte{0x01, 0x78, 0x56, 0x34, 0x12}
			req = append(req, "echo\x00abc"...)
			if err := raw.Send(qos, "server", req); err != nil {
				t.Fatal(err)
			}
			f, err := raw.Recv(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			want := []byte{0x11, 0x78, 0x56, 0x34, 0x12, 'a', 'b', 'c'}
			if !bytes.Equal(f.Payload, want) || f.Sender != "server" || f.Kind != bus.KindMessage {
				t.Errorf("reply % x from %q, want % x", f.Payload, f.Sender, want)
			}
			if f.Realtime != qos.Realtime() {
				t.Errorf("request QoS %d: reply realtime = %v", qos, f.Realtime)
			}
		}
		// An error frame: 12 id code(i16 LE) data.
		raw.Send(bus.QoSProcessed, "server", []byte("\x01\x02\x00\x00\x00nope\x00"))
		f, _ := raw.Recv(ctxT(t))
		code := make([]byte, 2)
		c := rpc.CodeMethodNotFound
		binary.LittleEndian.PutUint16(code, uint16(c))
		if want := append([]byte{0x12, 2, 0, 0, 0}, code...); !bytes.Equal(f.Payload, want) {
			t.Errorf("error frame % x, want % x", f.Payload, want)
		}
	})
}

// Frames that are no RPC frames are dropped; the client goes on.
func TestMalformedFramesAreDropped(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		echoServer(t, e, "server")
		raw := e.conn(t, "raw")
		for _, p := range [][]byte{nil, {0x01}, {0x01, 1, 0, 0, 0, 'x'}, {0x12, 1, 0, 0, 0, 1}, {0x11, 1}, {0x42}} {
			if err := raw.Send(bus.QoSProcessed, "server", p); err != nil {
				t.Fatal(err)
			}
		}
		c := e.rpc(t, "caller")
		if res, err := c.Call(ctxT(t), "server", "echo", []byte("ok")); err != nil || string(res) != "ok" {
			t.Fatalf("after garbage: %q %v", res, err)
		}
	})
}

func TestTypedHelpers(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		type add struct {
			A int `msgpack:"a"`
			B int `msgpack:"b"`
		}
		s := e.rpc(t, "calc")
		s.Handle("add", func(_ context.Context, r rpc.Request) ([]byte, error) {
			var p add
			if err := rpc.Unmarshal(r.Params, &p); err != nil {
				return nil, err
			}
			return rpc.Marshal(map[string]int{"sum": p.A + p.B})
		})
		c := e.rpc(t, "caller")
		got, err := rpc.CallValue[map[string]int](ctxT(t), c, "calc", "add", add{A: 2, B: 40})
		if err != nil || got["sum"] != 42 {
			t.Fatalf("add = %v, %v", got, err)
		}
		_, err = c.Call(ctxT(t), "calc", "add", []byte{0xc1}) // never valid MessagePack
		if !errors.Is(err, &rpc.Error{Code: rpc.CodeInvalidParams}) {
			t.Errorf("bad params: %v", err)
		}
	})
}

func TestMaxHandlersBoundsConcurrency(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		s := rpc.New(e.conn(t, "server"), rpc.Options{MaxHandlers: 3})
		defer s.Close()
		var mu sync.Mutex
		running, peak := 0, 0
		s.Handle("work", func(context.Context, rpc.Request) ([]byte, error) {
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			running--
			mu.Unlock()
			return nil, nil
		})
		c := e.rpc(t, "caller")
		var wg sync.WaitGroup
		for range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Call(ctxT(t), "server", "work", nil); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if peak > 3 || peak < 1 {
			t.Errorf("peak concurrent handlers %d, want at most 3", peak)
		}
	})
}

func TestWatchTargetsFailsCallsAtOnce(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		s := echoServer(t, e, "server")
		started := make(chan struct{}, 2)
		s.Handle("hang", func(ctx context.Context, r rpc.Request) ([]byte, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		})
		c := rpc.New(e.conn(t, "caller"), rpc.Options{WatchTargets: true})
		defer c.Close()
		other := echoServer(t, e, "other")
		done := make(chan error, 2)
		for _, target := range []string{"server", "server"} {
			go func() {
				_, err := c.Call(ctxT(t), target, "hang", nil)
				done <- err
			}()
		}
		<-started
		<-started
		s.Close()
		for range 2 {
			select {
			case err := <-done:
				if !errors.Is(err, bus.ErrNotRegistered) {
					t.Errorf("call to a target that left: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("call not failed when its target unregistered")
			}
		}
		// Calls to others are not affected.
		if res, err := c.Call(ctxT(t), other.Name(), "echo", []byte("x")); err != nil || string(res) != "x" {
			t.Errorf("call to another target: %q %v", res, err)
		}
	})
}
