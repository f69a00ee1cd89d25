package store

import (
	"encoding/json"
	"errors"
)

// Errors returned by DB methods, testable with errors.Is.
var (
	// ErrNotFound: no such user or event, or the event belongs to another tenant (the two are
	// indistinguishable on purpose, so a tenant cannot probe another's ids).
	ErrNotFound = errors.New("store: not found")
	// ErrUsernameTaken: CreateUser with a username that exists (usernames are unique server-wide).
	ErrUsernameTaken = errors.New("store: username taken")
	// ErrPublished: Cancel of an event already published.
	ErrPublished = errors.New("store: event already published")
	// ErrCancelled: Cancel of an event already cancelled.
	ErrCancelled = errors.New("store: event already cancelled")
	// ErrExists: Insert of an event ID the tenant already has (returned with the stored
	// record).
	ErrExists = errors.New("store: event exists")
	// ErrClosed: the DB is closed.
	ErrClosed = errors.New("store: closed")
	// ErrInvalid: a record that cannot be stored (missing id, tenant or name, or too long a
	// string for the key encoding).
	ErrInvalid = errors.New("store: invalid record")
)

// User is one account. The zero value is not a valid user: ID, Username and TenantID are
// required.
type User struct {
	ID           string   `json:"id"` // UUID
	Username     string   `json:"username"`
	PasswordHash []byte   `json:"password_hash"` // bcrypt; never leaves the server
	TenantID     string   `json:"tenant_id"`
	CollectionID string   `json:"collection_id"`
	Roles        []string `json:"roles"`
	Revoked      bool     `json:"revoked"`
	CreatedAt    int64    `json:"created_at"` // Unix seconds
	// TokenGen counts the user's revocations. Tokens carry the generation they were issued
	// in, so that unrevoking a user does not bring back tokens issued before the revocation.
	TokenGen uint64 `json:"token_gen,omitempty"`
}

// Event is one immutable record; only Published, Cancelled and Seq change after Insert.
type Event struct {
	ID           string          `json:"id"`    // UUID, assigned by the caller
	Event        string          `json:"event"` // name, 1-256 chars
	TenantID     string          `json:"tenant_id"`
	CollectionID string          `json:"collection_id"`
	UserID       string          `json:"user_id"`
	Timestamp    int64           `json:"timestamp"` // Unix seconds at which it becomes current
	Published    bool            `json:"published"`
	Cancelled    bool            `json:"cancelled"`
	Data         json.RawMessage `json:"data"`
	Seq          uint64          `json:"seq"` // per-tenant publication sequence (1,2,3…); 0 until published
	Order        uint64          `json:"-"`   // server-wide insertion counter, assigned by Insert; tie-break for equal timestamps
}
