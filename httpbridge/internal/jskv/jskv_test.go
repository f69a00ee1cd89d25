package jskv_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtbus/rtbus/cluster"
	"github.com/rtbus/rtbus/cluster/clustertest"
	"github.com/rtbus/rtbus/httpbridge/internal/jskv"
	"github.com/rtbus/rtbus/httpbridge/internal/store"
	"github.com/rtbus/rtbus/internal/testutil"
)

// events records what the hooks of one node were told.
type events struct {
	mu      sync.Mutex
	users   []store.User
	bl      map[string]int64
	tenants map[string]string
}

func (e *events) hooks() jskv.Hooks {
	return jskv.Hooks{
		User: func(_, cur store.User) { e.mu.Lock(); e.users = append(e.users, cur); e.mu.Unlock() },
		Blacklist: func(b store.BlacklistEntry, removed bool) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if removed {
				delete(e.bl, b.Session)
			} else {
				e.bl[b.Session] = b.Expires
			}
		},
		Tenant: func(t string, v []byte) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if v == nil {
				delete(e.tenants, t)
			} else {
				e.tenants[t] = string(v)
			}
		},
	}
}

func (e *events) check(f func(e *events) bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return f(e)
}

// open starts n nodes and opens the accounts on each, with hooks.
func open(t *testing.T, n int) ([]*jskv.Accounts, []*events, []*cluster.Node) {
	t.Helper()
	nodes := clustertest.Start(t, n)
	accs := make([]*jskv.Accounts, n)
	evs := make([]*events, n)
	for i, nd := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		a, err := jskv.Open(ctx, nd, jskv.Options{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		evs[i] = &events{bl: map[string]int64{}, tenants: map[string]string{}}
		a.Watch(evs[i].hooks())
		accs[i] = a
	}
	return accs, evs, nodes
}

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

func user(name, id string) store.User {
	return store.User{ID: id, Username: name, TenantID: "acme", PasswordHash: []byte("h-" + name), Roles: []string{}}
}

func TestAccountsAcrossNodes(t *testing.T) {
	accs, evs, _ := open(t, 3)

	// Concurrent sign-ups of one name on three nodes: exactly one wins.
	const name = "ann: ünïcödé / *.> $KV"
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, a := range accs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = a.CreateUser(user(name, fmt.Sprintf("id-%d", i))) }()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won < 0:
			won = i
		case err == nil:
			t.Fatalf("two sign-ups of one name succeeded: nodes %d and %d", won, i)
		case !errors.Is(err, store.ErrUsernameTaken):
			t.Fatalf("node %d: %v, want ErrUsernameTaken", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no sign-up succeeded")
	}
	id := fmt.Sprintf("id-%d", won)
	// Every node finds it at once, by name and by id (a losing id leads nowhere).
	for i, a := range accs {
		u, err := a.UserByName(name)
		if err != nil || u.ID != id {
			t.Fatalf("node %d: UserByName = %+v, %v", i, u, err)
		}
		if u, err = a.UserByID(id); err != nil || u.Username != name {
			t.Fatalf("node %d: UserByID = %+v, %v", i, u, err)
		}
		for j := range 3 {
			if j != won {
				if _, err := a.UserByID(fmt.Sprintf("id-%d", j)); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("node %d: the losing id %d: %v", i, j, err)
				}
			}
		}
	}
	for range 2 { // the second from the memory of the first's miss
		if _, err := accs[0].UserByName("nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown name: %v", err)
		}
	}
	// A name missed a moment ago and created since on another node is found (the watcher
	// brings it), the miss notwithstanding.
	if err := accs[2].CreateUser(user("nobody", "id-nobody")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a user missed a moment ago", func() bool {
		u, err := accs[0].UserByName("nobody")
		return err == nil && u.ID == "id-nobody"
	})
	if err := accs[1].CreateUser(user("", "x")); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}

	// Concurrent revocations on three nodes: a compare-and-set, so none is lost.
	for i, a := range accs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = a.SetRevoked(name, true) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: SetRevoked: %v", i, err)
		}
	}
	for i, a := range accs {
		waitFor(t, "every revocation seen", func() bool {
			u, err := a.UserByName(name)
			return err == nil && u.Revoked && u.TokenGen == 3
		})
		// Every node's hook saw the revocation.
		if !evs[i].check(func(e *events) bool { return len(e.users) > 0 && e.users[0].Revoked }) {
			t.Fatalf("node %d: the user hook was not told of the revocation", i)
		}
	}
	if _, err := accs[2].SetRevoked("nemo", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking an unknown user: %v", err)
	}
	u, err := accs[2].SetRevoked(name, false)
	if err != nil || u.Revoked || u.TokenGen != 3 {
		t.Fatalf("unrevoke: %+v, %v", u, err)
	}
	if users, err := accs[0].Users(); err != nil || len(users) != 2 || users[0].Username != name {
		t.Fatalf("Users = %+v, %v", users, err)
	}

	// Tenant settings: written on one node, told on every node.
	if err := accs[0].SetTenantSettings("t.1/*", []byte(`{"public":true}`)); err != nil {
		t.Fatal(err)
	}
	for i := range accs {
		waitFor(t, "tenant settings on every node", func() bool {
			return evs[i].check(func(e *events) bool { return e.tenants["t.1/*"] == `{"public":true}` })
		})
	}
	var got []string
	accs[0].TenantSettings(func(t string, v []byte) error { got = append(got, t+"="+string(v)); return nil })
	if len(got) != 1 || got[0] != `t.1/*={"public":true}` {
		t.Fatalf("TenantSettings on the writer = %q", got)
	}

	// Secrets: the first node's candidate wins everywhere.
	s0, created, err := accs[0].Secret("jwt_secret", "first")
	if err != nil || s0 != "first" || !created {
		t.Fatalf("Secret on node 1 = %q %v %v", s0, created, err)
	}
	for _, a := range accs[1:] {
		if s, created, err := a.Secret("jwt_secret", "other"); err != nil || s != "first" || created {
			t.Fatalf("Secret elsewhere = %q %v %v", s, created, err)
		}
	}
}

func TestBlacklistAcrossNodes(t *testing.T) {
	accs, evs, nodes := open(t, 3)
	now := time.Now().Unix()
	if err := accs[0].Blacklist(store.BlacklistEntry{Session: "s-long", Expires: now + 3600}); err != nil {
		t.Fatal(err)
	}
	if err := accs[1].Blacklist(store.BlacklistEntry{Session: "s-short", Expires: now + 1}); err != nil {
		t.Fatal(err)
	}
	if err := accs[0].Blacklist(store.BlacklistEntry{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty session: %v", err)
	}
	for i := range accs {
		waitFor(t, "both entries on every node", func() bool {
			return evs[i].check(func(e *events) bool { return e.bl["s-long"] == now+3600 && e.bl["s-short"] == now+1 })
		})
	}
	// The short one expires by its TTL, on its own: every node is told, and the bucket no
	// longer has it.
	for i := range accs {
		waitFor(t, "the short entry gone on every node", func() bool {
			return evs[i].check(func(e *events) bool { _, ok := e.bl["s-short"]; return !ok })
		})
	}
	kv, err := nodes[2].JetStream().KeyValue(context.Background(), jskv.SessionsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), "cy1zaG9ydA"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("expired entry still in the bucket: %v", err)
	}
	// Unblacklisting on another node than the one that wrote it.
	if err := accs[2].Unblacklist("s-long", "unknown"); err != nil {
		t.Fatal(err)
	}
	if l, _ := accs[2].Blacklisted(); len(l) != 0 {
		t.Fatalf("the node that unblacklisted still lists %+v", l)
	}
	for i := range accs {
		waitFor(t, "the long entry gone on every node", func() bool {
			return evs[i].check(func(e *events) bool { return len(e.bl) == 0 })
		})
	}
	// A later node start (Watch) is told of the current entries.
	if err := accs[1].Blacklist(store.BlacklistEntry{Session: "s-again", Expires: now + 600}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := jskv.Open(ctx, nodes[0], jskv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ev := &events{bl: map[string]int64{}, tenants: map[string]string{}}
	a.Watch(ev.hooks())
	if !ev.check(func(e *events) bool { return e.bl["s-again"] == now+600 && len(e.bl) == 1 }) {
		t.Fatalf("replayed blacklist = %v", ev.bl)
	}
}

func TestNoQuorum(t *testing.T) {
	accs, _, nodes := open(t, 3)
	if err := accs[0].CreateUser(user("ann", "id-ann")); err != nil {
		t.Fatal(err)
	}
	accs[1].Close()
	accs[2].Close()
	nodes[1].Close()
	nodes[2].Close()
	// Once the node's readiness check has noticed (every second), writes fail at once with
	// cluster.ErrNotReady (before, within the operation timeout: 5 s); reads of what the node
	// holds go on.
	waitFor(t, "the node to notice", func() bool { return nodes[0].Readiness() != nil })
	start := time.Now()
	if err := accs[0].Blacklist(store.BlacklistEntry{Session: "s", Expires: time.Now().Unix() + 60}); !errors.Is(err, cluster.ErrNotReady) {
		t.Fatalf("Blacklist without quorum: %v, want ErrNotReady", err)
	}
	if _, err := accs[0].SetRevoked("ann", true); !errors.Is(err, cluster.ErrNotReady) {
		t.Fatalf("SetRevoked without quorum: %v, want ErrNotReady", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("writes without quorum took %v to fail, the node knowing it already", d)
	}
	if u, err := accs[0].UserByName("ann"); err != nil || u.ID != "id-ann" {
		t.Fatalf("UserByName without quorum = %+v, %v", u, err)
	}
	if u, err := accs[0].UserByID("id-ann"); err != nil || u.Username != "ann" {
		t.Fatalf("UserByID without quorum = %+v, %v", u, err)
	}
}
