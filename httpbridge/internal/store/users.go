package store

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
)

// CreateUser stores a new user (synced). ErrUsernameTaken if the username exists;
// ErrInvalid if ID, Username or TenantID is empty, a string is not UTF-8, or the ID is in use.
func (db *DB) CreateUser(u User) error {
	if u.ID == "" || u.Username == "" || u.TenantID == "" {
		return fmt.Errorf("%w: user needs an id, a username and a tenant", ErrInvalid)
	}
	if !validUTF8(append([]string{u.ID, u.Username, u.TenantID, u.CollectionID}, u.Roles...)...) {
		return fmt.Errorf("%w: strings must be UTF-8", ErrInvalid)
	}
	v, err := encodeUser(&u)
	if err != nil {
		return err
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.ops.Done()
	nk, ik := key1(pUserByName, u.Username), key1(pUserByID, u.ID)
	db.mu.Lock()
	if ok, err := db.has(nk); err != nil || ok {
		db.mu.Unlock()
		if err == nil {
			err = ErrUsernameTaken
		}
		return err
	}
	if ok, err := db.has(ik); err != nil || ok {
		db.mu.Unlock()
		if err == nil {
			err = fmt.Errorf("%w: user id %q in use", ErrInvalid, u.ID)
		}
		return err
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	b.Set(nk, v, nil)
	b.Set(ik, []byte(u.Username), nil)
	return db.commitUnlock(b, false)
}

// UserByName returns the user with that username, or ErrNotFound.
func (db *DB) UserByName(username string) (User, error) {
	if err := db.enter(); err != nil {
		return User{}, err
	}
	defer db.ops.Done()
	s := db.userSnapshot()
	defer s.Close()
	return userByName(s, username)
}

// UserByID returns the user with that id, or ErrNotFound.
func (db *DB) UserByID(id string) (User, error) {
	if err := db.enter(); err != nil {
		return User{}, err
	}
	defer db.ops.Done()
	if u, ok := db.users.get(id); ok {
		return u, nil
	}
	gen := db.users.generation()
	s := db.userSnapshot()
	defer s.Close()
	name, err := get(s, key1(pUserByID, id))
	if err != nil {
		return User{}, err
	}
	u, err := userByName(s, string(name))
	if err == nil {
		db.users.put(u, gen)
	}
	return u, err
}

// Users returns all users sorted by username.
func (db *DB) Users() ([]User, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.ops.Done()
	s := db.userSnapshot()
	defer s.Close()
	lo := []byte{pUserByName}
	it, err := s.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []User
	for ok := it.First(); ok; ok = it.Next() {
		u, err := decodeUser(it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, it.Error()
}

// SetRevoked sets the revoked flag of a user (synced) and returns the updated user. Revoking
// also moves the user to a new TokenGen.
// ErrNotFound if there is no such user.
func (db *DB) SetRevoked(username string, revoked bool) (User, error) {
	if err := db.enter(); err != nil {
		return User{}, err
	}
	defer db.ops.Done()
	db.mu.Lock()
	u, err := userByName(db.pdb, username)
	if err != nil {
		db.mu.Unlock()
		return User{}, err
	}
	if revoked {
		u.TokenGen++
	}
	u.Revoked = revoked
	v, err := encodeUser(&u)
	if err != nil {
		db.mu.Unlock()
		return User{}, err
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	b.Set(key1(pUserByName, username), v, nil)
	err = db.commitUnlock(b, false)
	db.users.drop(u.ID)
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// reader is what both the DB and a snapshot offer.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

func userByName(r reader, username string) (User, error) {
	v, err := get(r, key1(pUserByName, username))
	if err != nil {
		return User{}, err
	}
	return decodeUser(v)
}

// get returns a copy of the value of k, or ErrNotFound.
func get(r reader, k []byte) ([]byte, error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

func (db *DB) has(k []byte) (bool, error) {
	_, err := get(db.pdb, k)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
