package store

import (
	"errors"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

var errNotImplemented = errors.New("store: not implemented")

// Options configure Open. The zero value is valid.
type Options struct {
	// OnPublish is called for every event as it becomes published (at Insert with publishNow,
	// or by PublishDue), AFTER its published flag and Seq are durable (synced), in Seq order
	// per tenant, never twice for one event, from one goroutine at a time (never concurrently).
	// It must not block for long (the API hands the event to the SSE hub and the bus).
	// nil = nothing is called.
	OnPublish func(Event)
	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

// DB is an open store. Its methods are safe for concurrent use.
type DB struct {
	pdb *pebble.DB
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*DB, error) { return nil, errNotImplemented }

// Close flushes and closes the store; later calls of any method return ErrClosed.
func (db *DB) Close() error { return errNotImplemented }

// CreateUser stores a new user (synced). ErrUsernameTaken if the username exists.
func (db *DB) CreateUser(u User) error { return errNotImplemented }

// UserByName returns the user with that username, or ErrNotFound.
func (db *DB) UserByName(username string) (User, error) { return User{}, errNotImplemented }

// UserByID returns the user with that id, or ErrNotFound.
func (db *DB) UserByID(id string) (User, error) { return User{}, errNotImplemented }

// Users returns all users sorted by username.
func (db *DB) Users() ([]User, error) { return nil, errNotImplemented }

// SetRevoked sets the revoked flag of a user (synced) and returns the updated user.
func (db *DB) SetRevoked(username string, revoked bool) (User, error) {
	return User{}, errNotImplemented
}

// Insert stores e (e.Order is assigned; Published/Cancelled/Seq from the caller are ignored).
// If publishNow, the record is stored already published with its Seq, in the same synced
// batch, and OnPublish(e) has been called before Insert returns. Otherwise it is stored
// unpublished and indexed by due time. Insert returns only once the record is durable; the
// returned Event is the stored record.
func (db *DB) Insert(e Event, publishNow bool) (Event, error) { return Event{}, errNotImplemented }

// PublishDue publishes every unpublished, uncancelled event with Timestamp <= now (Unix
// seconds), oldest first: flag + Seq written in one synced batch, then OnPublish for each.
func (db *DB) PublishDue(now int64) (n int, err error) { return 0, errNotImplemented }

// NextDue is the timestamp of the earliest unpublished, uncancelled event (ok=false if none).
func (db *DB) NextDue() (ts int64, ok bool) { return 0, false }

// Cancel marks an unpublished event cancelled (synced) and removes it from the due index.
// ErrNotFound (unknown, or of another tenant), ErrPublished, ErrCancelled.
func (db *DB) Cancel(tenant, id string) (Event, error) { return Event{}, errNotImplemented }

// Get returns one event of tenant; ErrNotFound also for another tenant's event.
func (db *DB) Get(tenant, id string) (Event, error) { return Event{}, errNotImplemented }

// Collection returns every event (published or not, cancelled or not) of one collection of
// one tenant, ascending timestamp then insertion order.
func (db *DB) Collection(tenant, collection string) ([]Event, error) {
	return nil, errNotImplemented
}

// UserEvents returns every event inserted by userID in tenant, ascending timestamp then
// insertion order.
func (db *DB) UserEvents(tenant, userID string) ([]Event, error) { return nil, errNotImplemented }

// State returns, for each (event name, collection) of the tenant, the latest published event
// (highest Timestamp, then highest Order), sorted oldest first; plus the tenant's last Seq at
// the moment the state was read, so a stream can subscribe first, read the state, then skip
// live events with Seq <= seq.
func (db *DB) State(tenant string) (events []Event, seq uint64, err error) {
	return nil, 0, errNotImplemented
}

// Since calls fn for every published event of tenant with Seq > after, ascending Seq, then
// returns the last Seq it passed (or after). fn returning an error stops and returns it.
func (db *DB) Since(tenant string, after uint64, fn func(Event) error) (last uint64, err error) {
	return after, errNotImplemented
}

// LastSeq returns the tenant's last publication Seq (0 if none).
func (db *DB) LastSeq(tenant string) (uint64, error) { return 0, errNotImplemented }
