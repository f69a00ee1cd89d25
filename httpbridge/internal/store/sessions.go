package store

import (
	"github.com/cockroachdb/pebble/v2"
)

// BlacklistEntry is a blacklisted session: refused until Expires (Unix seconds), after which
// its token is expired anyway and the entry may be pruned.
type BlacklistEntry struct {
	Session string
	Expires int64
}

// put writes k → v (synced).
func (db *DB) put(k, v []byte) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.ops.Done()
	b := db.pdb.NewBatch()
	defer b.Close()
	b.Set(k, v, nil)
	db.mu.Lock()
	return db.commitUnlock(b, false)
}

// Blacklist stores (or replaces) a blacklisted session (synced). ErrInvalid for an empty id.
func (db *DB) Blacklist(e BlacklistEntry) error {
	if e.Session == "" || !validUTF8(e.Session) {
		return ErrInvalid
	}
	return db.put(key1(pBlacklist, e.Session), appendTS(nil, e.Expires))
}

// Unblacklist removes the entries of the sessions given (synced); missing ones are ignored.
func (db *DB) Unblacklist(sessions ...string) error {
	if len(sessions) == 0 {
		return nil
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.ops.Done()
	b := db.pdb.NewBatch()
	defer b.Close()
	for _, s := range sessions {
		b.Delete(key1(pBlacklist, s), nil)
	}
	db.mu.Lock()
	return db.commitUnlock(b, false)
}

// Blacklisted returns every blacklisted session, expired ones included.
func (db *DB) Blacklisted() ([]BlacklistEntry, error) {
	var out []BlacklistEntry
	err := db.scan(pBlacklist, func(k, v []byte) error {
		s, _, err := readStr(k[1:])
		if err != nil {
			return err
		}
		ts, _, err := readTS(v)
		if err != nil {
			return err
		}
		out = append(out, BlacklistEntry{s, ts})
		return nil
	})
	return out, err
}

// SetTenantSettings stores the settings of a tenant (any JSON the caller defines; synced).
func (db *DB) SetTenantSettings(tenant string, settings []byte) error {
	if tenant == "" || !validUTF8(tenant) {
		return ErrInvalid
	}
	return db.put(key1(pTenantSet, tenant), settings)
}

// TenantSettings calls fn with the settings of every tenant that has some.
func (db *DB) TenantSettings(fn func(tenant string, settings []byte) error) error {
	return db.scan(pTenantSet, func(k, v []byte) error {
		t, _, err := readStr(k[1:])
		if err != nil {
			return err
		}
		return fn(t, v)
	})
}

// scan calls fn for every key of the keyspace p in a durable snapshot (fn must copy what it
// keeps).
func (db *DB) scan(p byte, fn func(k, v []byte) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.ops.Done()
	s := db.snapshot()
	defer s.Close()
	lo := []byte{p}
	it, err := s.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// Ping reports whether the store is open (ErrClosed otherwise).
func (db *DB) Ping() error {
	if err := db.enter(); err != nil {
		return err
	}
	db.ops.Done()
	return nil
}
