package store

import "sync"

// maxCachedUsers bounds userCache (a few hundred bytes an entry).
const maxCachedUsers = 8192

// userCache holds users read by id, the lookup every token check makes, so that a request
// costs no snapshot, two reads and a JSON decode. It is exact, not a hint: the DB's only
// writers of a user (SetRevoked; CreateUser makes new ids, and misses are not cached) drop the
// user's entry before they return, and gen keeps a read that raced with a write from storing
// what it read before the write.
type userCache struct {
	mu   sync.RWMutex
	gen  uint64 // bumped by every drop
	byID map[string]User
}

func (c *userCache) get(id string) (User, bool) {
	c.mu.RLock()
	u, ok := c.byID[id]
	c.mu.RUnlock()
	return u, ok
}

// generation is read before a lookup whose result goes to put.
func (c *userCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put stores u if no user was dropped since gen was read.
func (c *userCache) put(u User, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.byID == nil {
		c.byID = make(map[string]User)
	}
	if _, ok := c.byID[u.ID]; !ok && len(c.byID) >= maxCachedUsers {
		for id := range c.byID { // full: any one goes (map order is random)
			delete(c.byID, id)
			break
		}
	}
	c.byID[u.ID] = u
}

// drop forgets the user: it is being written.
func (c *userCache) drop(id string) {
	c.mu.Lock()
	c.gen++
	delete(c.byID, id)
	c.mu.Unlock()
}
