package browsertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// One browser for the package's tests, each test in tabs of its own.
var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

// chromiumPath finds the browser: RTBUS_CHROMIUM, else the usual names on PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("RTBUS_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found: these tests drive a real browser; install Debian's chromium " +
		"(apt-get install chromium, as .ci/run does) or set RTBUS_CHROMIUM to a Chromium or Chrome binary")
}

func startBrowser(t *testing.T) context.Context {
	t.Helper()
	browser.once.Do(func() {
		path, err := chromiumPath()
		if err != nil {
			browser.err = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
			chromedp.DisableGPU,
		)
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		browser.ctx = ctx
		browser.cancel = func() { cancel(); acancel() }
		// The first Run starts the browser; bound it without tying the browser to a timeout.
		done := make(chan error, 1)
		go func() { done <- chromedp.Do(ctx) }()
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			err = errors.New("Chromium did not start within 30 s")
		}
		if err != nil {
			browser.err = fmt.Errorf("starting Chromium (%s): %w", path, err)
		}
	})
	if browser.err != nil {
		t.Fatal(browser.err)
	}
	return browser.ctx
}

// tab is a browser tab; what its page writes on the console is shown when the test fails.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []string
}

func newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(startBrowser(t))
	tb := &tab{t: t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		cancel()
		t.Fatalf("opening a tab: %v", err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			tb.mu.Lock()
			line := fmt.Sprintf("%s: %s", m.Type, m.Text)
			if len(line) > 200 {
				line = line[:200] + "…"
			}
			tb.console = append(tb.console, line)
			if len(tb.console) > 40 {
				tb.console = tb.console[1:]
			}
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			tb.mu.Lock()
			defer tb.mu.Unlock()
			for _, l := range tb.console {
				t.Logf("browser console: %s", l)
			}
		}
	})
	return tb
}

// do runs actions, bounded in time.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes its value into v.
func (tb *tab) eval(expr string, v any) {
	tb.t.Helper()
	if err := tb.tryEval(expr, v); err != nil {
		tb.t.Fatalf("%s: %v", expr, err)
	}
}

func (tb *tab) tryEval(expr string, v any) error {
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// waitFor polls a JavaScript condition until it is true; on timeout it fails with the value
// of dump, an expression that says what the page holds.
func (tb *tab) waitFor(cond, dump string) {
	tb.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ok bool
		err := tb.tryEval("!!("+cond+")", &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var state any
			tb.tryEval(dump, &state)
			b, _ := json.MarshalIndent(state, "", " ")
			tb.t.Fatalf("waited 15 s for %s (last error %v); the page holds:\n%s", cond, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// js quotes a Go value as a JavaScript literal.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
