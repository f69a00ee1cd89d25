package bus

import "sync/atomic"

// A Ref counts the holders of a buffer that routed payloads share, so that a transport can
// reuse the buffer once every receiver is done with the frames carved from it instead of
// leaving each one to the garbage collector: at a million frames a second, the copies a
// socket reader makes are most of what a broker allocates.
//
// The creator holds a Ref once while it routes from the buffer (see Client.Hold); every frame
// the bus queues from it holds it once more, until its receiver calls Frame.Release. A
// receiver that never releases (an in-process client keeping payloads, a queue dropped with
// frames in it) keeps the count above zero for good: the buffer is then never reused, and
// the garbage collector takes it as it would without a Ref. Reuse therefore waits for every
// holder, and nothing is lost when one forgets.
type Ref struct {
	n    atomic.Int32
	free func()
}

// NewRef returns a Ref held once, by its caller. free runs, once, when the last hold is
// released; it may put the buffer back in a pool and Reset the Ref for its next use.
func NewRef(free func()) *Ref {
	r := &Ref{free: free}
	r.n.Store(1)
	return r
}

// Reset re-arms a Ref whose free has run: it is held once again, by its caller.
func (r *Ref) Reset() { r.n.Store(1) }

// Release drops one hold; the last one runs free.
func (r *Ref) Release() {
	if r.n.Add(-1) == 0 {
		r.free()
	}
}

func (r *Ref) retain() { r.n.Add(1) }

// Attach makes f hold r once more, until f.Release. It is for a transport that builds the
// frames it delivers itself, such as a socket client parsing what its broker sends into
// reusable buffers.
func (r *Ref) Attach(f *Frame) {
	r.retain()
	f.ref = r
}

// Hold makes the frames c routes from now on (Send, Publish, PublishFor, Broadcast) hold r,
// once per receiver that queues one; nil stops it. It is for a transport that reads frames
// into reusable buffers and routes them from one goroutine: that goroutine calls Hold before
// routing each frame and holds r itself meanwhile, so that the count cannot reach zero while
// a frame is being routed. Routing on c from any other goroutine while a Ref is held is
// unsafe: such a frame could take a hold on r after its last one was released, and its
// buffer be reused under it. Transports own their clients, so nothing else routes on them.
func (c *Client) Hold(r *Ref) { c.hold = r }

// Release tells the bus that this receiver is done with f's payload and topic, which may then
// be overwritten. Only a receiver that has copied what it needs, as a socket writer does,
// should call it, once per frame received; a receiver that never calls it loses nothing. It
// does nothing for frames that hold no Ref.
func (f *Frame) Release() {
	if f.ref != nil {
		f.ref.Release()
		f.ref = nil
	}
}
