package httpbridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/jslog"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// Bounds of cluster mode's event log.
const (
	// logOpenTimeout bounds finding (or creating) the stream at start and checking this
	// node's index against it; logCatchUp, the index's catch-up before the server serves.
	logOpenTimeout = 30 * time.Second
	logCatchUp     = 5 * time.Minute
	// indexWait bounds the wait for this node's index to apply a write the log acknowledged:
	// long enough to ride out the follower moving to another server (a few seconds), since
	// the answer after it, 503 although stored, invites a client to insert again.
	indexWait = 10 * time.Second
)

// errLogUnavailable answers a write the cluster's log could not take (503).
var errLogUnavailable = errorf(http.StatusServiceUnavailable, "event log unavailable (no JetStream quorum): retry later, with the same Idempotency-Key header for an insert (it may have been stored)")

// clusterLog is cluster mode's event log: writes go to the JetStream stream (quorum), and
// are answered once this node's index, which a follower goroutine keeps applying from the
// stream, has them. JetStream's message schedules publish due events.
type clusterLog struct {
	db     *store.DB
	jl     *jslog.Log
	cancel context.CancelFunc
	done   chan struct{}

	// Writes under way, which close lets finish (each is bounded by its timeouts) so that an
	// event the log acknowledged is not answered 503 because the follower was stopped.
	mu      sync.Mutex
	closing bool
	writes  sync.WaitGroup
}

// begin registers a write; false once closing.
func (l *clusterLog) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.writes.Add(1)
	return true
}

// newClusterLog opens the stream, rebuilds this node's index if needed, and catches it up
// with the stream before the server serves: the publications it replays meanwhile
// (Seq <= s.quietSeq) are not announced to streams or the bus, which saw them, if at all,
// on the nodes that were up.
func newClusterLog(s *Server) (*clusterLog, error) {
	nd := s.cfg.Cluster
	ctx, cancel := context.WithTimeout(context.Background(), logOpenTimeout)
	defer cancel()
	jl, err := jslog.Open(ctx, nd.JetStream(), jslog.Options{Replicas: nd.Replicas(), Logger: s.cfg.Logger, Available: nd.Readiness})
	if err != nil {
		return nil, err
	}
	if _, err := jl.PrepareIndex(ctx, s.db); err != nil {
		return nil, err
	}
	last, err := jl.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	s.epoch, s.idPrefix, s.quietSeq = jl.Epoch(), jl.Epoch()+".", last
	fctx, fcancel := context.WithCancel(context.Background())
	l := &clusterLog{db: s.db, jl: jl, cancel: fcancel, done: make(chan struct{})}
	go func() { defer close(l.done); jl.Follow(fctx, s.db) }()
	wctx, wcancel := context.WithTimeout(context.Background(), logCatchUp)
	defer wcancel()
	start := time.Now()
	if err := s.db.WaitApplied(wctx, last); err != nil {
		l.close()
		return nil, fmt.Errorf("catching up with the event stream (at %d of %d): %w", s.db.Applied(), last, err)
	}
	s.cfg.Logger.Info("httpbridge: event index caught up with the cluster's log", "epoch", jl.Epoch(), "seq", last, "took", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// applied waits until this node's index has seq (read-your-writes).
func (l *clusterLog) applied(ctx context.Context, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, indexWait)
	defer cancel()
	l.jl.Want(seq)
	if err := l.db.WaitApplied(ctx, seq); err != nil {
		if errors.Is(err, store.ErrClosed) {
			return err
		}
		return errorf(http.StatusServiceUnavailable, "event stored, but this node's index is behind (at %d, want %d): retry with the same Idempotency-Key header, which stores it once", l.db.Applied(), seq)
	}
	return nil
}

func (l *clusterLog) Insert(ctx context.Context, e store.Event, publishNow bool) (store.Event, error) {
	if !l.begin() {
		return store.Event{}, store.ErrClosed
	}
	defer l.writes.Done()
	// A repeat of an event this index has (an Idempotency-Key retry, perhaps after the
	// stream's two-minute de-duplication window) writes nothing: a second schedule record
	// would replace the first's. Within the window, the stream drops a repeat that gets past
	// this check (the event id is the message id), and the index drops any later copy. A
	// random id is new: no read for it.
	if keyedID(e.ID) {
		if old, err := l.db.Get(e.TenantID, e.ID); err == nil {
			return old, store.ErrExists
		} else if !errors.Is(err, store.ErrNotFound) {
			return store.Event{}, err
		}
	}
	var seq uint64
	var err error
	if publishNow {
		seq, err = l.jl.Insert(ctx, e)
	} else {
		seq, err = l.jl.Schedule(ctx, e)
	}
	if err != nil {
		return store.Event{}, logError(err)
	}
	if err := l.applied(ctx, seq); err != nil {
		return store.Event{}, err
	}
	return l.db.Get(e.TenantID, e.ID)
}

func (l *clusterLog) Cancel(ctx context.Context, tenant, id string) (store.Event, error) {
	if !l.begin() {
		return store.Event{}, store.ErrClosed
	}
	defer l.writes.Done()
	e, err := l.db.Get(tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		// Perhaps inserted on another node a moment ago: catch up with the log, look again.
		last, lerr := l.jl.LastSeq(ctx)
		if lerr != nil {
			return store.Event{}, logError(lerr)
		}
		if err := l.applied(ctx, last); err != nil {
			return store.Event{}, err
		}
		e, err = l.db.Get(tenant, id)
	}
	switch {
	case err != nil:
		return store.Event{}, err
	case e.Published:
		return e, store.ErrPublished
	case e.Cancelled:
		return e, store.ErrCancelled
	}
	seq, cerr := l.jl.Cancel(ctx, e)
	if errors.Is(cerr, jslog.ErrDecided) {
		// Fired or cancelled, but which? The index says, once it has the stream's last record.
		if seq, err = l.jl.LastSeq(ctx); err != nil {
			return store.Event{}, logError(err)
		}
	} else if cerr != nil && !errors.Is(cerr, store.ErrPublished) && !errors.Is(cerr, store.ErrCancelled) {
		return store.Event{}, logError(cerr)
	}
	if err := l.applied(ctx, seq); err != nil {
		return store.Event{}, err
	}
	if e, err = l.db.Get(tenant, id); err != nil {
		return store.Event{}, err
	}
	// The index applied the log's order: it is the verdict every node shows (a firing that
	// crossed a stored cancel inside JetStream is dropped, or the cancel is).
	switch {
	case e.Published:
		return e, store.ErrPublished
	case e.Cancelled && cerr != nil:
		return e, store.ErrCancelled
	case cerr != nil: // cannot happen: the record that refused the cancel is applied
		return e, store.ErrPublished
	}
	return e, nil
}

func (l *clusterLog) close() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	l.writes.Wait()
	l.cancel()
	<-l.done
}

func logError(err error) error {
	if errors.Is(err, jslog.ErrUnavailable) {
		return errLogUnavailable
	}
	return err
}
