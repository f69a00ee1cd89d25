package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestWalkthrough(t *testing.T) {
	bcryptCost = bcrypt.MinCost
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out syncWriter
	if err := run(ctx, &out, ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"signed up\n", "logged in\n", "inserted two events, the second scheduled\n",
		`stream: user_info {"name":"Ann"}`,
		`stream: greeting {"text":"hello"}`,
		`stream: greeting {"text":"a second later"}`,
		"bus: rtbus/http/acme/events/greeting",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
