// Package jslog is the event log of cluster mode: one JetStream stream, replicated, that
// every node writes its inserts, schedules and cancellations to, and that every node reads
// in order into its own pebble index (package store in index mode).
//
// Subjects (event ids are server-made UUIDs, valid subject tokens):
//
//	rtbus.ev.ins.<id>    an event published at once (Nats-Msg-Id = event id)
//	rtbus.ev.sched.<id>  a future event: a JetStream message schedule "@at <time>" whose
//	                     target is rtbus.ev.pub.<id> (Nats-Msg-Id = event id)
//	rtbus.ev.pub.<id>    the schedule's firing (the server copies the body and adds
//	                     Nats-Scheduler), or a cancel record (header Rtbus-Kind: cancel)
//	                     written only if nothing was written there yet
//
// Every record's body is the whole event as JSON, so that the records left once a schedule
// is purged still rebuild every event.
package jslog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// Names of the stream and its subjects.
const (
	Stream        = "RTBUS_EVENTS"
	subjects      = "rtbus.ev.>"
	subjInsert    = "rtbus.ev.ins."
	subjSchedule  = "rtbus.ev.sched."
	subjPublish   = "rtbus.ev.pub."
	epochMetadata = "rtbus_epoch"
	kindHeader    = "Rtbus-Kind"
	kindCancel    = "cancel"
)

// DefaultTimeout bounds one write to the log (the wait for a quorum's acknowledgement). It
// outlasts an election of the stream's leader (the followers call one 2 to 4 s after the
// leader's last word in rtbusd's embedded servers, 4 to 9 s on NATS's own timers), so that
// a write sent while the leader dies is answered once the next leader has it rather than
// with an error that leaves the client guessing.
const DefaultTimeout = 10 * time.Second

// Errors, testable with errors.Is. A cancel that loses to the schedule's firing returns
// store.ErrPublished; one that finds a cancel already written, store.ErrCancelled.
var (
	// ErrUnavailable: the log did not acknowledge a write in time (no JetStream quorum, no
	// leader, or the NATS connection is down). The write may still be stored; retrying it is
	// safe (the event id de-duplicates).
	ErrUnavailable = errors.New("jslog: event log unavailable")
	// ErrDecided: Cancel found the event's publication subject written (fired or cancelled)
	// but could not read which: the caller's index, caught up with the stream, tells.
	ErrDecided = errors.New("jslog: the event is already published or cancelled")
	// ErrSingleNodeData: PrepareIndex was given a single node's store, whose events exist
	// nowhere else; it is not turned into an index (which would delete them).
	ErrSingleNodeData = errors.New("jslog: the data directory holds a single node's events, which cluster mode would discard: move its db directory away first")
)

// Options configure Open.
type Options struct {
	Replicas int           // of the stream when Open creates it; 0 = 1
	Timeout  time.Duration // of one write; 0 = DefaultTimeout
	Logger   *slog.Logger  // nil = slog.Default()
	// Available, if set, is asked between a write's attempts whether waiting on is any use:
	// an error (the node knows it has lost the quorum) ends the write with ErrUnavailable at
	// once rather than after Timeout.
	Available func() error
}

// Log is the stream, opened. Its methods are safe for concurrent use.
type Log struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	epoch   string
	timeout time.Duration
	avail   func() error
	log     *slog.Logger
	// wanted is the highest sequence a caller waits for the index to apply (Want).
	wanted atomic.Uint64
}

// Open opens the stream, creating it (with a new random epoch) when it does not exist yet.
// Nodes starting at once agree: one creates it, the others find it and read its epoch.
func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Log, error) {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l := &Log{js: js, timeout: o.Timeout, avail: o.Available, log: o.Logger}
	var b [8]byte
	rand.Read(b[:])
	cfg := jetstream.StreamConfig{
		Name:              Stream,
		Description:       "rtbus event log: inserts, schedules, publications, cancellations",
		Subjects:          []string{subjects},
		Storage:           jetstream.FileStorage,
		Replicas:          o.Replicas,
		Duplicates:        2 * time.Minute,
		AllowMsgSchedules: true,
		AllowDirect:       true,
		Metadata:          map[string]string{epochMetadata: hex.EncodeToString(b[:])},
	}
	for {
		// Each attempt is bounded: a create that races another node's may go unanswered.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(actx, Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			s, err = js.CreateStream(actx, cfg)
		}
		cancel()
		if err == nil {
			info := s.CachedInfo()
			l.stream, l.epoch = s, info.Config.Metadata[epochMetadata]
			if l.epoch == "" {
				return nil, fmt.Errorf("jslog: stream %s has no %s metadata: not rtbus's", Stream, epochMetadata)
			}
			if !info.Config.AllowMsgSchedules {
				return nil, fmt.Errorf("jslog: stream %s does not allow message schedules", Stream)
			}
			return l, nil
		}
		l.log.Debug("jslog: opening the stream; retrying", "err", err)
		// Right after start a cluster may still elect its meta leader: retry until ctx ends.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("jslog: opening stream %s: %w (%w)", Stream, err, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Epoch identifies this incarnation of the stream: a stream deleted and made anew has
// another one, and indexes and cursors of the old one are no longer valid.
func (l *Log) Epoch() string { return l.epoch }

// body is a record's payload: the whole event.
type body struct {
	ID           string          `json:"id"`
	Event        string          `json:"event"`
	TenantID     string          `json:"tenant_id"`
	CollectionID string          `json:"collection_id"`
	UserID       string          `json:"user_id"`
	Timestamp    int64           `json:"timestamp"`
	Data         json.RawMessage `json:"data"`
}

func encodeBody(e *store.Event) ([]byte, error) {
	return json.Marshal(body{e.ID, e.Event, e.TenantID, e.CollectionID, e.UserID, e.Timestamp, e.Data})
}

// checkID refuses ids that are not one subject token.
func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, ".*> \t\r\n") {
		return fmt.Errorf("%w: event id %q is not a subject token", store.ErrInvalid, id)
	}
	return nil
}

// Insert writes an event published at once and returns its stream sequence once a quorum
// has it. A retry with the same event id within two minutes is stored once (same sequence).
func (l *Log) Insert(ctx context.Context, e store.Event) (uint64, error) {
	return l.write(ctx, subjInsert, e, nil)
}

// Schedule writes a future event: a message schedule that the stream's leader fires at
// e.Timestamp into rtbus.ev.pub.<id>. It returns the schedule's stream sequence.
func (l *Log) Schedule(ctx context.Context, e store.Event) (uint64, error) {
	h := nats.Header{}
	h.Set(jetstream.ScheduleHeader, "@at "+time.Unix(e.Timestamp, 0).UTC().Format(time.RFC3339))
	h.Set(jetstream.ScheduleTargetHeader, subjPublish+e.ID)
	return l.write(ctx, subjSchedule, e, h)
}

func (l *Log) write(ctx context.Context, prefix string, e store.Event, h nats.Header) (uint64, error) {
	if err := checkID(e.ID); err != nil {
		return 0, err
	}
	data, err := encodeBody(&e)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	// While the stream elects a new leader (its leader's node died) a publish gets no answer
	// at all: rather than wait the whole timeout on one request, ask again every attempt
	// with the same message id, which the stream stores once (a repeat of a write that did
	// land is answered with its sequence). The first attempt after the election lands.
	for {
		actx, acancel := context.WithTimeout(ctx, attemptTimeout)
		ack, err := l.js.PublishMsg(actx, &nats.Msg{Subject: prefix + e.ID, Header: h, Data: data}, jetstream.WithMsgID(e.ID))
		acancel()
		if err == nil {
			return ack.Sequence, nil
		}
		if ctx.Err() == nil && inProcess(err) {
			// A concurrent write of the same id (a client's retry that crossed its first
			// try) is not committed yet: once it is, this one is answered as its duplicate.
			select {
			case <-ctx.Done():
			case <-time.After(inProcessWait):
			}
			continue
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoStreamResponse) {
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if l.avail != nil {
			if aerr := l.avail(); aerr != nil {
				return 0, fmt.Errorf("%w: %v (%v)", ErrUnavailable, aerr, err)
			}
		}
	}
}

// attemptTimeout bounds one publish attempt of write (see there); inProcessWait is the pause
// before asking again about a message id that another write has in process.
const (
	attemptTimeout = time.Second
	inProcessWait  = 10 * time.Millisecond
)

// errCodeDuplicateInProcess is JetStream's "duplicate message id is in process" (the
// nats.go client names no constant for it).
const errCodeDuplicateInProcess jetstream.ErrorCode = 10158

func inProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeDuplicateInProcess
}

// Cancel writes a cancel record for the scheduled event e, on condition that nothing was
// written to rtbus.ev.pub.<id> yet; the same write purges the schedule, so it can no longer
// fire. It returns the record's sequence; or, when the schedule fired first,
// store.ErrPublished with the firing's sequence (store.ErrCancelled when another cancel won).
func (l *Log) Cancel(ctx context.Context, e store.Event) (uint64, error) {
	if err := checkID(e.ID); err != nil {
		return 0, err
	}
	data, err := encodeBody(&e)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	h := nats.Header{}
	h.Set(kindHeader, kindCancel)
	h.Set(jetstream.SchedulerHeader, subjSchedule+e.ID)
	h.Set(jetstream.ScheduleNextHeader, "purge")
	h.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	ack, err := l.js.PublishMsg(ctx, &nats.Msg{Subject: subjPublish + e.ID, Header: h, Data: data})
	if err == nil {
		return ack.Sequence, nil
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || (apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence && apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// Something is there already: the firing, or another cancel. (A direct get may be
	// answered by a replica that lacks it yet: then the caller's index tells.)
	m, gerr := l.stream.GetLastMsgForSubject(ctx, subjPublish+e.ID)
	if gerr != nil {
		return 0, fmt.Errorf("%w (reading %s: %v)", ErrDecided, subjPublish+e.ID, gerr)
	}
	if m.Header.Get(kindHeader) == kindCancel {
		return m.Sequence, store.ErrCancelled
	}
	return m.Sequence, store.ErrPublished
}

// LastSeq is the stream's last sequence (to catch up with before answering "not found").
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return info.State.LastSeq, nil
}

// decode turns a stream message into an index record; ok is false for a message that is no
// record of ours (logged and skipped: the index must not stop on it).
func decode(subject string, seq uint64, h nats.Header, data []byte) (store.Record, bool) {
	var r store.Record
	r.Seq = seq
	var id string
	switch {
	case strings.HasPrefix(subject, subjInsert):
		r.Kind, id = store.KindInsert, subject[len(subjInsert):]
	case strings.HasPrefix(subject, subjSchedule):
		r.Kind, id = store.KindSchedule, subject[len(subjSchedule):]
	case strings.HasPrefix(subject, subjPublish):
		r.Kind, id = store.KindPublish, subject[len(subjPublish):]
		if h.Get(kindHeader) == kindCancel {
			r.Kind = store.KindCancel
		}
	default:
		return r, false
	}
	var b body
	if err := json.Unmarshal(data, &b); err != nil || b.ID != id {
		return r, false
	}
	r.Event = store.Event{ID: b.ID, Event: b.Event, TenantID: b.TenantID, CollectionID: b.CollectionID,
		UserID: b.UserID, Timestamp: b.Timestamp, Data: b.Data}
	return r, true
}
