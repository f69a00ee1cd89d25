package httpbridge

import (
	"context"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// eventLog is the write path of events, the one seam between single-node and cluster mode:
// every writer (the routes, the bus link, the internal API) inserts and cancels through it,
// and it publishes future events when they fall due. Reads stay on the Server's *store.DB,
// the index, in both modes. New chooses the implementation once, from Config.Cluster.
type eventLog interface {
	// Insert stores e, published at once when publishNow, and returns it as stored (with
	// its Order and, when published, its Seq). When Insert returns, the local index has it.
	// An event whose id is stored already is not stored again: Insert returns the stored
	// record, with store.ErrExists where it can tell.
	Insert(ctx context.Context, e store.Event, publishNow bool) (store.Event, error)
	// Cancel cancels the scheduled event id of tenant: store.ErrNotFound, ErrPublished or
	// ErrCancelled when it cannot.
	Cancel(ctx context.Context, tenant, id string) (store.Event, error)
	// close stops publishing due events; the store is closed by the Server afterwards.
	close()
}

// localLog is single-node mode's log: the pebble store, and the scheduler that publishes its
// due events.
type localLog struct {
	db    *store.DB
	sched *scheduler
}

func newLocalLog(s *Server) *localLog {
	return &localLog{db: s.db, sched: newScheduler(s.db, s.clock, s.cfg.Logger)}
}

func (l *localLog) Insert(_ context.Context, e store.Event, publishNow bool) (store.Event, error) {
	e, err := l.db.Insert(e, publishNow)
	if err == nil && !e.Published {
		l.sched.wake()
	}
	return e, err
}

func (l *localLog) Cancel(_ context.Context, tenant, id string) (store.Event, error) {
	e, err := l.db.Cancel(tenant, id)
	if err == nil {
		l.sched.wake()
	}
	return e, err
}

func (l *localLog) close() { l.sched.stop() }
