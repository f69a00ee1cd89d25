package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtbus/rtbus/httpbridge/internal/store"
)

// recorder collects OnPublish calls and checks the contract as they come: never
// concurrently, Seq order per tenant without gaps, each event once.
type recorder struct {
	t       testing.TB
	mu      sync.Mutex
	inCall  bool
	events  []store.Event
	lastSeq map[string]uint64
	seen    map[string]bool
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, lastSeq: map[string]uint64{}, seen: map[string]bool{}}
}

func (r *recorder) onPublish(e store.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inCall {
		r.t.Errorf("OnPublish called concurrently")
	}
	r.inCall = true
	defer func() { r.inCall = false }()
	if !e.Published || e.Cancelled {
		r.t.Errorf("OnPublish of %s: published=%v cancelled=%v", e.ID, e.Published, e.Cancelled)
	}
	if want := r.lastSeq[e.TenantID] + 1; e.Seq != want {
		r.t.Errorf("OnPublish tenant %q: seq %d, want %d", e.TenantID, e.Seq, want)
	}
	r.lastSeq[e.TenantID] = e.Seq
	k := e.TenantID + "\x00" + e.ID
	if r.seen[k] {
		r.t.Errorf("event %s published twice", e.ID)
	}
	r.seen[k] = true
	r.events = append(r.events, e)
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.ID)
	}
	return out
}

func open(t testing.TB, dir string, r *recorder) *store.DB {
	t.Helper()
	opts := store.Options{}
	if r != nil {
		opts.OnPublish = r.onPublish
	}
	db, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func ev(tenant, id, name, coll string, ts int64) store.Event {
	return store.Event{
		ID: id, Event: name, TenantID: tenant, CollectionID: coll, UserID: "u-" + tenant,
		Timestamp: ts, Data: json.RawMessage(fmt.Sprintf(`{"id":%q}`, id)),
	}
}

func mustInsert(t testing.TB, db *store.DB, e store.Event, now bool) store.Event {
	t.Helper()
	got, err := db.Insert(e, now)
	if err != nil {
		t.Fatalf("insert %s: %v", e.ID, err)
	}
	return got
}

func idsOf(es []store.Event) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestUsers(t *testing.T) {
	db := open(t, t.TempDir(), nil)
	defer db.Close()
	bob := store.User{ID: "id-bob", Username: "bob", PasswordHash: []byte("hash"), TenantID: "t1",
		CollectionID: "c-bob", Roles: []string{"admin"}, CreatedAt: 100}
	if err := db.CreateUser(bob); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(store.User{ID: "id-al", Username: "al", TenantID: "t2"}); err != nil {
		t.Fatal(err)
	}
	err := db.CreateUser(store.User{ID: "id-other", Username: "bob", TenantID: "t2"})
	if !errors.Is(err, store.ErrUsernameTaken) {
		t.Fatalf("duplicate username: %v", err)
	}
	if err := db.CreateUser(store.User{ID: "id-bob", Username: "bobby", TenantID: "t2"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("duplicate id: %v", err)
	}
	if err := db.CreateUser(store.User{Username: "x"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}
	got, err := db.UserByName("bob")
	if err != nil || got.ID != "id-bob" || string(got.PasswordHash) != "hash" || got.TenantID != "t1" ||
		got.CollectionID != "c-bob" || !slices.Equal(got.Roles, []string{"admin"}) || got.CreatedAt != 100 || got.Revoked {
		t.Fatalf("UserByName = %+v, %v", got, err)
	}
	if got, err := db.UserByID("id-bob"); err != nil || got.Username != "bob" {
		t.Fatalf("UserByID = %+v, %v", got, err)
	}
	if _, err := db.UserByName("nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := db.UserByID("nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	us, err := db.Users()
	if err != nil || len(us) != 2 || us[0].Username != "al" || us[1].Username != "bob" {
		t.Fatalf("Users = %+v, %v", us, err)
	}
	u, err := db.SetRevoked("bob", true)
	if err != nil || !u.Revoked {
		t.Fatalf("SetRevoked = %+v, %v", u, err)
	}
	if u, _ := db.UserByID("id-bob"); !u.Revoked {
		t.Fatal("revocation not stored")
	}
	if u, err := db.SetRevoked("bob", false); err != nil || u.Revoked {
		t.Fatalf("unrevoke = %+v, %v", u, err)
	}
	if u, _ := db.UserByID("id-bob"); u.Revoked || u.TokenGen != 1 {
		t.Fatalf("UserByID after unrevoke = %+v", u)
	}
	if _, err := db.SetRevoked("nobody", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

// UserByID, which keeps the users it read, never answers with a record older than the last
// write that returned, however reads and writes interleave.
func TestUserByIDFollowsWrites(t *testing.T) {
	db := open(t, t.TempDir(), nil)
	defer db.Close()
	if err := db.CreateUser(store.User{ID: "id-ann", Username: "ann", TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.UserByID("id-ann"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 50 {
		w, err := db.SetRevoked("ann", i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		if u, err := db.UserByID("id-ann"); err != nil || u.Revoked != w.Revoked || u.TokenGen != w.TokenGen {
			t.Fatalf("write %d: UserByID = %+v, %v; the write returned %+v", i, u, err, w)
		}
	}
	close(stop)
	wg.Wait()
}

func TestInsertNowAndFuture(t *testing.T) {
	r := newRecorder(t)
	db := open(t, t.TempDir(), r)
	defer db.Close()
	e := ev("t", "e1", "score", "c", 1000)
	e.Published, e.Cancelled, e.Seq = false, true, 77 // ignored
	got := mustInsert(t, db, e, true)
	if !got.Published || got.Cancelled || got.Seq != 1 || got.Order == 0 {
		t.Fatalf("published insert = %+v", got)
	}
	if !slices.Equal(r.ids(), []string{"e1"}) {
		t.Fatalf("OnPublish not called before Insert returned: %v", r.ids())
	}
	fut := mustInsert(t, db, ev("t", "e2", "score", "c", 5000), false)
	if fut.Published || fut.Seq != 0 || fut.Order <= got.Order {
		t.Fatalf("future insert = %+v", fut)
	}
	if len(r.ids()) != 1 {
		t.Fatal("future event announced")
	}
	if g, err := db.Get("t", "e2"); err != nil || g.Published || string(g.Data) != `{"id":"e2"}` || g.Order != fut.Order {
		t.Fatalf("Get = %+v, %v", g, err)
	}
	if ts, ok := db.NextDue(); !ok || ts != 5000 {
		t.Fatalf("NextDue = %d, %v", ts, ok)
	}
	// A repeat of an id stores nothing, announces nothing, and returns the stored record.
	if g, err := db.Insert(ev("t", "e2", "x", "c", 1), true); !errors.Is(err, store.ErrExists) || g.ID != "e2" || g.Published || g.Timestamp != 5000 || g.Order != fut.Order {
		t.Fatalf("duplicate id: %+v, %v", g, err)
	}
	if len(r.ids()) != 1 {
		t.Fatal("duplicate id announced")
	}
	if _, err := db.Insert(store.Event{ID: "x", TenantID: "t"}, true); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("no name: %v", err)
	}
	bad := ev("t", "e3", "x", "c", 1)
	bad.Data = json.RawMessage(`{not json`)
	if _, err := db.Insert(bad, true); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad data: %v", err)
	}
	// A failed insert consumes no Seq.
	if g := mustInsert(t, db, ev("t", "e4", "x", "c", 1), true); g.Seq != 2 {
		t.Fatalf("seq after failed inserts = %d", g.Seq)
	}
	if _, err := db.Get("t", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
}

func TestOrdering(t *testing.T) {
	db := open(t, t.TempDir(), nil)
	defer db.Close()
	// Timestamps out of insertion order, with ties, a negative one and a future one.
	ins := []struct {
		id  string
		ts  int64
		now bool
	}{{"a", 30, true}, {"b", 10, true}, {"c", 30, true}, {"d", -5, true}, {"e", 10, true}, {"f", 99, false}, {"g", 30, true}}
	for _, x := range ins {
		e := ev("t", x.id, "n", "coll", x.ts)
		e.UserID = "alice"
		mustInsert(t, db, e, x.now)
	}
	mustInsert(t, db, ev("t", "other-coll", "n", "coll2", 0), true)
	want := []string{"d", "b", "e", "a", "c", "g", "f"}
	got, err := db.Collection("t", "coll")
	if err != nil || !slices.Equal(idsOf(got), want) {
		t.Fatalf("Collection = %v, %v; want %v", idsOf(got), err, want)
	}
	got, err = db.UserEvents("t", "alice")
	if err != nil || !slices.Equal(idsOf(got), want) {
		t.Fatalf("UserEvents = %v, %v; want %v", idsOf(got), err, want)
	}
	if got, err := db.Collection("t", "none"); err != nil || len(got) != 0 {
		t.Fatalf("empty collection = %v, %v", got, err)
	}
}

func TestStateAndSince(t *testing.T) {
	r := newRecorder(t)
	db := open(t, t.TempDir(), r)
	defer db.Close()
	mustInsert(t, db, ev("t", "a1", "a", "c1", 10), true)
	mustInsert(t, db, ev("t", "b1", "b", "c1", 20), true)
	mustInsert(t, db, ev("t", "a2", "a", "c1", 20), true) // replaces a1
	mustInsert(t, db, ev("t", "a0", "a", "c1", 5), true)  // older: a2 stays
	mustInsert(t, db, ev("t", "a3", "a", "c2", 20), true) // other collection
	mustInsert(t, db, ev("t", "b2", "b", "c1", 20), true) // same ts, later: replaces b1
	mustInsert(t, db, ev("t", "af", "a", "c1", 900), false)
	mustInsert(t, db, ev("t", "z", "z", "c9", 1), false) // not published: not in state
	state, seq, err := db.State("t")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a2", "a3", "b2"}; !slices.Equal(idsOf(state), want) || seq != 6 {
		t.Fatalf("State = %v seq %d; want %v seq 6", idsOf(state), seq, want)
	}
	var got []string
	last, err := db.Since("t", 3, func(e store.Event) error { got = append(got, e.ID); return nil })
	if err != nil || last != 6 || !slices.Equal(got, []string{"a0", "a3", "b2"}) {
		t.Fatalf("Since(3) = %v last %d %v", got, last, err)
	}
	got = nil
	last, err = db.Since("t", 6, func(e store.Event) error { got = append(got, e.ID); return nil })
	if err != nil || last != 6 || got != nil {
		t.Fatalf("Since(6) = %v last %d %v", got, last, err)
	}
	last, err = db.Since("t", 1000, func(e store.Event) error { t.Fatalf("Since(1000) gives %s", e.ID); return nil })
	if err != nil || last != 6 {
		t.Fatalf("Since beyond the last seq = %d %v, want 6", last, err)
	}
	if last, err := db.Since("empty", 5, func(store.Event) error { return nil }); err != nil || last != 0 {
		t.Fatalf("Since on an empty tenant = %d %v, want 0", last, err)
	}
	stop := errors.New("stop")
	last, err = db.Since("t", 0, func(e store.Event) error {
		if e.Seq == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || last != 1 {
		t.Fatalf("Since stopped = %d %v", last, err)
	}
	if s, err := db.LastSeq("t"); err != nil || s != 6 {
		t.Fatalf("LastSeq = %d %v", s, err)
	}
	// Publishing the future event makes it the state of (a, c1).
	if n, err := db.PublishDue(1000); err != nil || n != 2 {
		t.Fatalf("PublishDue = %d %v", n, err)
	}
	state, seq, _ = db.State("t")
	if want := []string{"a3", "b2", "af"}; !slices.Equal(idsOf(state[1:]), want) || state[0].ID != "z" || seq != 8 {
		t.Fatalf("State after publish = %v seq %d", idsOf(state), seq)
	}
}

func TestCancel(t *testing.T) {
	r := newRecorder(t)
	db := open(t, t.TempDir(), r)
	defer db.Close()
	mustInsert(t, db, ev("t", "pub", "n", "c", 1), true)
	mustInsert(t, db, ev("t", "fut", "n", "c", 100), false)
	mustInsert(t, db, ev("t", "fut2", "n", "c", 200), false)
	if _, err := db.Cancel("t", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := db.Cancel("other", "fut"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
	if _, err := db.Cancel("t", "pub"); !errors.Is(err, store.ErrPublished) {
		t.Fatalf("published: %v", err)
	}
	e, err := db.Cancel("t", "fut")
	if err != nil || !e.Cancelled || e.Published {
		t.Fatalf("cancel = %+v %v", e, err)
	}
	if _, err := db.Cancel("t", "fut"); !errors.Is(err, store.ErrCancelled) {
		t.Fatalf("twice: %v", err)
	}
	if ts, ok := db.NextDue(); !ok || ts != 200 {
		t.Fatalf("NextDue after cancel = %d %v", ts, ok)
	}
	if n, err := db.PublishDue(1000); err != nil || n != 1 {
		t.Fatalf("PublishDue = %d %v", n, err)
	}
	if !slices.Equal(r.ids(), []string{"pub", "fut2"}) {
		t.Fatalf("published %v", r.ids())
	}
	if g, _ := db.Get("t", "fut"); !g.Cancelled || g.Published {
		t.Fatalf("cancelled event = %+v", g)
	}
	if _, ok := db.NextDue(); ok {
		t.Fatal("NextDue with nothing due")
	}
}

func TestPublishDue(t *testing.T) {
	r := newRecorder(t)
	db := open(t, t.TempDir(), r)
	defer db.Close()
	if n, err := db.PublishDue(1 << 40); err != nil || n != 0 {
		t.Fatalf("empty PublishDue = %d %v", n, err)
	}
	// More than one chunk, two tenants, equal timestamps.
	var want []string
	for i := range 1100 {
		id := fmt.Sprintf("e%04d", i)
		tenant := []string{"x", "y"}[i%2]
		mustInsert(t, db, ev(tenant, id, "n", "c", int64(100+i/3)), false)
		want = append(want, id)
	}
	mustInsert(t, db, ev("x", "late", "n", "c", 10_000), false)
	if ts, ok := db.NextDue(); !ok || ts != 100 {
		t.Fatalf("NextDue = %d %v", ts, ok)
	}
	if n, err := db.PublishDue(99); err != nil || n != 0 {
		t.Fatalf("PublishDue(99) = %d %v", n, err)
	}
	n, err := db.PublishDue(9999)
	if err != nil || n != 1100 {
		t.Fatalf("PublishDue = %d %v", n, err)
	}
	if !slices.Equal(r.ids(), want) {
		t.Fatal("publication order is not timestamp then insertion order")
	}
	if n, _ := db.PublishDue(9999); n != 0 {
		t.Fatalf("published again: %d", n)
	}
	if ts, ok := db.NextDue(); !ok || ts != 10_000 {
		t.Fatalf("NextDue = %d %v", ts, ok)
	}
	if s, _ := db.LastSeq("x"); s != 550 {
		t.Fatalf("LastSeq(x) = %d", s)
	}
}

// Tenant ids that are prefixes of each other, or differ only by bytes the key encoding
// escapes, must never see each other's events.
func TestTenantIsolation(t *testing.T) {
	db := open(t, t.TempDir(), nil)
	defer db.Close()
	tenants := []string{"a", "ab", "a\x00", "a\x00\x01", "a\x00b", "\u00ff", "a\u00ff", "aé", "b"}
	for i, tn := range tenants {
		for j, coll := range []string{"c", "c\x00", "cc"} {
			e := ev(tn, fmt.Sprintf("id%d", j), "n", coll, int64(i))
			e.UserID = "u"
			mustInsert(t, db, e, true)
		}
		mustInsert(t, db, ev(tn, "due", "n", "d", 5000), false)
	}
	for i, tn := range tenants {
		for j, coll := range []string{"c", "c\x00", "cc"} {
			got, err := db.Collection(tn, coll)
			if err != nil || len(got) != 1 || got[0].TenantID != tn || got[0].ID != fmt.Sprintf("id%d", j) {
				t.Fatalf("Collection(%q,%q) = %+v %v", tn, coll, got, err)
			}
		}
		us, _ := db.UserEvents(tn, "u")
		st, seq, _ := db.State(tn)
		if len(us) != 3 || len(st) != 3 || seq != 3 {
			t.Fatalf("tenant %q: %d user events, %d state, seq %d", tn, len(us), len(st), seq)
		}
		for _, e := range append(us, st...) {
			if e.TenantID != tn || e.Timestamp != int64(i) {
				t.Fatalf("tenant %q sees %+v", tn, e)
			}
		}
		n, _ := db.Since(tn, 0, func(e store.Event) error {
			if e.TenantID != tn {
				t.Fatalf("Since(%q) gives %+v", tn, e)
			}
			return nil
		})
		if n != 3 {
			t.Fatalf("Since(%q) last = %d", tn, n)
		}
	}
	if _, err := db.Get("a", "due"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Cancel("a\x00", "due"); err != nil {
		t.Fatal(err)
	}
	if e, _ := db.Get("a", "due"); e.Cancelled {
		t.Fatal("cancel in tenant a\\x00 cancelled tenant a's event")
	}
	if _, err := db.Insert(ev("\xff", "x", "n", "c", 1), true); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("tenant not UTF-8: %v", err)
	}
	if _, err := db.Get("", "due"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("empty tenant: %v", err)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	r := newRecorder(t)
	db := open(t, dir, r)
	if err := db.CreateUser(store.User{ID: "u1", Username: "ann", TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	first := mustInsert(t, db, ev("t", "p1", "n", "c", 10), true)
	mustInsert(t, db, ev("t", "d1", "n", "c", 100), false) // due before Close
	mustInsert(t, db, ev("t", "d2", "n", "c", 200), false) // falls due while closed
	mustInsert(t, db, ev("t", "d3", "n", "c", 300), false) // cancelled while open
	mustInsert(t, db, ev("t", "d4", "n", "c", 900), false) // still future after reopen
	if _, err := db.Cancel("t", "d3"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PublishDue(150); err != nil || n != 1 {
		t.Fatalf("PublishDue = %d %v", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := db.Insert(ev("t", "x", "n", "c", 1), true); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Insert after Close: %v", err)
	}
	if _, err := db.Get("t", "p1"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}

	db = open(t, dir, r)
	defer db.Close()
	if u, err := db.UserByName("ann"); err != nil || u.ID != "u1" {
		t.Fatalf("user after reopen: %+v %v", u, err)
	}
	if ts, ok := db.NextDue(); !ok || ts != 200 {
		t.Fatalf("NextDue after reopen = %d %v", ts, ok)
	}
	if n, err := db.PublishDue(250); err != nil || n != 1 {
		t.Fatalf("PublishDue after reopen = %d %v (d1 again, or d2 missing?)", n, err)
	}
	p := mustInsert(t, db, ev("t", "p2", "n", "c", 20), true)
	if p.Seq != 4 || p.Order <= first.Order+4 {
		t.Fatalf("counters after reopen: seq %d order %d (first order %d)", p.Seq, p.Order, first.Order)
	}
	if !slices.Equal(r.ids(), []string{"p1", "d1", "d2", "p2"}) {
		t.Fatalf("published %v", r.ids())
	}
	if s, _ := db.LastSeq("t"); s != 4 {
		t.Fatalf("LastSeq = %d", s)
	}
	all, _ := db.Collection("t", "c")
	if len(all) != 6 {
		t.Fatalf("collection after reopen: %v", idsOf(all))
	}
}

func TestConcurrentInserts(t *testing.T) {
	r := newRecorder(t)
	db := open(t, t.TempDir(), r)
	const workers, per = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := []string{"t1", "t2", "t3"}[w%3]
			for i := range per {
				id := fmt.Sprintf("w%d-%d", w, i)
				now := i%4 != 0
				got, err := db.Insert(ev(tenant, id, "n", "c", int64(i)), now)
				if err != nil {
					errs <- err
					return
				}
				if now && got.Seq == 0 {
					errs <- fmt.Errorf("%s: no seq", id)
					return
				}
				if i%8 == 0 {
					if _, err := db.PublishDue(int64(i)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := db.PublishDue(1 << 30); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(r.ids()); n != workers*per {
		t.Fatalf("%d publications, want %d", n, workers*per)
	}
}

// State and Since read one consistent, durable snapshot while inserts go on: the state holds
// no event beyond the Seq it returns, and the publications up to that Seq have all been
// announced through OnPublish already (so a stream that subscribed first loses nothing).
func TestReadsDuringInserts(t *testing.T) {
	var announced atomic.Uint64
	db, err := store.Open(t.TempDir(), store.Options{OnPublish: func(e store.Event) { announced.Store(e.Seq) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const total = 150
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range total / 3 {
					if _, err := db.Insert(ev("t", fmt.Sprintf("w%d-%d", w, i), fmt.Sprint("n", i%5), "c", int64(i)), true); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}()
	for reads := 0; ; reads++ {
		st, seq, err := db.State("t")
		if err != nil {
			t.Fatal(err)
		}
		if a := announced.Load(); a < seq {
			t.Fatalf("State seq %d, but only %d announced", seq, a)
		}
		for _, e := range st {
			if e.Seq > seq {
				t.Fatalf("state holds seq %d beyond its snapshot seq %d", e.Seq, seq)
			}
		}
		var n uint64
		last, err := db.Since("t", 0, func(e store.Event) error {
			n++
			if e.Seq != n {
				return fmt.Errorf("since: seq %d at position %d", e.Seq, n)
			}
			return nil
		})
		if err != nil || last != n {
			t.Fatalf("Since = %d (%d events) %v", last, n, err)
		}
		if a := announced.Load(); a < last {
			t.Fatalf("Since reached seq %d, but only %d announced", last, a)
		}
		select {
		case <-done:
			if last, _ := db.LastSeq("t"); last != total {
				t.Fatalf("LastSeq %d, want %d", last, total)
			}
			return
		default:
		}
	}
}

// TestUserReadsDoNotWaitForInserts: reading a user does not wait for the sync of an insert
// under way (an authentication must not cost an fsync of its own), while reading events does.
func TestUserReadsDoNotWaitForInserts(t *testing.T) {
	entered, gate := make(chan struct{}), make(chan struct{})
	db, err := store.Open(t.TempDir(), store.Options{OnPublish: func(e store.Event) {
		if e.ID == "held" {
			close(entered)
			<-gate // the insert is not durable (announced) until the gate opens
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u := store.User{ID: "u1", Username: "ann", TenantID: "t", PasswordHash: []byte("h")}
	if err := db.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	inserted := make(chan error, 1)
	go func() {
		_, err := db.Insert(ev("t", "held", "n", "c", 1), true)
		inserted <- err
	}()
	<-entered
	read := make(chan error, 2)
	go func() {
		_, err := db.UserByID(u.ID)
		read <- err
	}()
	go func() {
		_, err := db.UserByName(u.Username)
		read <- err
	}()
	for range 2 {
		select {
		case err := <-read:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			close(gate)
			t.Fatal("a user read waited for an insert's sync")
		}
	}
	events := make(chan int, 1)
	go func() {
		es, _ := db.Collection("t", "c")
		events <- len(es)
	}()
	select {
	case n := <-events:
		t.Fatalf("an event read returned %d events before the insert was durable", n)
	case <-time.After(50 * time.Millisecond):
	}
	close(gate)
	if err := <-inserted; err != nil {
		t.Fatal(err)
	}
	if n := <-events; n != 1 {
		t.Fatalf("event read after the sync: %d events, want 1", n)
	}
}

// The count of scheduled events stays the truth (what a fresh Open counts in the due index)
// under concurrent inserts, repeats, cancels and publications.
func TestScheduledCountExact(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				id := fmt.Sprintf("w%d-%d", w, i%60) // some ids repeat
				e := ev("t", id, "n", "c", int64(1000+i%7))
				if _, err := db.Insert(e, i%5 == 0); err != nil && !errors.Is(err, store.ErrExists) {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					db.Cancel("t", id)
				}
				if i%10 == 0 {
					if _, err := db.PublishDue(int64(1000 + i%7)); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	n := db.Scheduled()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, dir, nil)
	defer db.Close()
	if got := db.Scheduled(); got != n || n < 0 {
		t.Fatalf("Scheduled counted %d, the due index holds %d", n, got)
	}
	published, err := db.PublishDue(2000)
	if err != nil || int64(published) != n || db.Scheduled() != 0 {
		t.Fatalf("PublishDue = %d, %v; Scheduled was %d, is %d", published, err, n, db.Scheduled())
	}
}

// Concurrent inserts of one id store it once: one succeeds, the others get ErrExists with
// the stored record, and it is announced once.
func TestInsertSameIDConcurrent(t *testing.T) {
	r := newRecorder(t)
	db := open(t, t.TempDir(), r)
	defer db.Close()
	const n = 8
	got := make([]store.Event, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = db.Insert(ev("t", "same", "x", "c", 1), true)
		}()
	}
	wg.Wait()
	stored := 0
	for i := range n {
		switch {
		case errs[i] == nil:
			stored++
		case !errors.Is(errs[i], store.ErrExists):
			t.Fatalf("insert %d: %v", i, errs[i])
		}
		if got[i].ID != "same" || !got[i].Published || got[i].Seq != 1 {
			t.Fatalf("insert %d returned %+v", i, got[i])
		}
	}
	if stored != 1 || len(r.ids()) != 1 {
		t.Fatalf("%d inserts stored it, %d announcements", stored, len(r.ids()))
	}
}
