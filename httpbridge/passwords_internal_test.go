package httpbridge

import (
	"strconv"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// TestFailureTablesBounded: however many keys fail, a table holds at most its bound, and a
// key that is being refused stays refused while new keys flood in.
func TestFailureTablesBounded(t *testing.T) {
	f := newFailures(3, time.Minute)
	f.max = 100
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 3; i++ {
		f.take("target", now)
	}
	for i := 0; i < 1000; i++ {
		f.take("flood"+strconv.Itoa(i), now.Add(time.Duration(i)*time.Millisecond))
		if f.len() > f.max {
			t.Fatalf("%d keys held, bound %d", f.len(), f.max)
		}
	}
	// The target's debt is the largest: the flood evicts the keys nearest to being forgotten.
	if f.take("target", now.Add(time.Second)) == 0 {
		t.Fatal("a flood of other keys freed the refused key")
	}
	if f.take("target", now.Add(21*time.Second)) != 0 {
		t.Fatal("still refused once a failure is forgotten")
	}
}

// TestBasicCacheBounded: the cache holds at most its bound.
func TestBasicCacheBounded(t *testing.T) {
	c := newBasicCache(time.Minute)
	c.max = 50
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 500; i++ {
		c.remember(c.sum("u"+strconv.Itoa(i), "pw"), store.User{ID: strconv.Itoa(i)}, now)
		if c.len() > c.max {
			t.Fatalf("%d entries, bound %d", c.len(), c.max)
		}
	}
	if _, ok := c.get(c.sum("u499", "pw"), now); !ok {
		t.Fatal("the newest entry is gone")
	}
	if _, ok := c.get(c.sum("u499", "pw"), now.Add(time.Minute)); ok {
		t.Fatal("an entry outlived its TTL")
	}
}
