package httpbridge

import (
	"hash/maphash"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// failures limits failed password checks per key (a username, a client address): a key may
// fail `burst` times in a row, then once more every window/burst (a generic cell rate
// algorithm: the window is the most failures it remembers). A key over its limit is refused
// before any password is checked, so refusals cost no bcrypt. The table holds at most max
// keys: when full, the keys whose failures are forgotten go first, then the one nearest to
// being forgotten.
type failures struct {
	burst  int
	window time.Duration
	step   time.Duration // window / burst: the time one failure is remembered
	max    int
	seed   maphash.Seed

	mu  sync.Mutex
	tat map[uint64]time.Time // when the key's failures are all forgotten
}

// maxFailureKeys bounds each table of failures (about 40 bytes a key).
const maxFailureKeys = 10000

func newFailures(burst int, window time.Duration) *failures {
	if burst <= 0 || window <= 0 {
		return nil // no limit
	}
	return &failures{burst: burst, window: window, step: window / time.Duration(burst), max: maxFailureKeys,
		seed: maphash.MakeSeed(), tat: make(map[uint64]time.Time)}
}

// Keys are hashed with a random seed: a key's size does not matter (a username of a
// megabyte), and no one can choose keys that collide.
func (f *failures) key(s string) uint64 { return maphash.String(f.seed, s) }

// take returns how long key must wait before its next try, or 0 and counts the try as a
// failure in advance, in one step: concurrent tries cannot all pass on the same remaining
// allowance. A try that then succeeds gives it back (refund, or forget).
func (f *failures) take(key string, now time.Time) time.Duration {
	if f == nil {
		return 0
	}
	k := f.key(key)
	f.mu.Lock()
	defer f.mu.Unlock()
	tat, ok := f.tat[k]
	// One more failure would put the key's debt past the window: refused until one is paid.
	if d := tat.Sub(now) - (f.window - f.step); ok && d > 0 {
		return d
	}
	if !ok && len(f.tat) >= f.max {
		f.evict(now)
	}
	if tat.Before(now) {
		tat = now
	}
	f.tat[k] = tat.Add(f.step)
	return 0
}

// refund gives back a try taken for key that did not fail.
func (f *failures) refund(key string) {
	if f == nil {
		return
	}
	k := f.key(key)
	f.mu.Lock()
	if tat, ok := f.tat[k]; ok {
		f.tat[k] = tat.Add(-f.step)
	}
	f.mu.Unlock()
}

// forget clears key's failures (a successful check of that username).
func (f *failures) forget(key string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	delete(f.tat, f.key(key))
	f.mu.Unlock()
}

// evict makes room: forgotten keys first, else the key nearest to being forgotten.
func (f *failures) evict(now time.Time) {
	var oldest uint64
	var oldestTAT time.Time
	first := true
	for k, t := range f.tat {
		if !t.After(now) {
			delete(f.tat, k)
			continue
		}
		if first || t.Before(oldestTAT) {
			oldest, oldestTAT, first = k, t, false
		}
	}
	if len(f.tat) >= f.max && !first {
		delete(f.tat, oldest)
	}
}

// len is the number of keys remembered.
func (f *failures) len() int {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tat)
}

// clientKey is the address a request came from, as the limits count it: the IP address, or
// for IPv6 its /64 (one host commonly holds a whole /64). Behind a proxy every client has the
// proxy's address: raise Config.LoginFailuresPerAddr there.
func clientKey(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}
