package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtbus/rtbus/internal/testutil"
)

// The tests build rtbus and rtbusd and run them as an operator would, against a daemon on a
// temporary socket.

var bins struct {
	once          sync.Once
	dir           string
	rtbus, rtbusd string
	err           error
}

// build builds both binaries once, when a test first needs them (the fuzz target does not).
func build(t *testing.T) {
	t.Helper()
	bins.once.Do(func() {
		if bins.dir, bins.err = os.MkdirTemp("", "rtbuscli"); bins.err != nil {
			return
		}
		bins.rtbus, bins.rtbusd = filepath.Join(bins.dir, "rtbus"), filepath.Join(bins.dir, "rtbusd")
		for bin, pkg := range map[string]string{bins.rtbus: ".", bins.rtbusd: "../rtbusd"} {
			if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
}

// TestMain keeps the daemons and clients that the tests start off the user's files and
// default addresses (testutil.Isolate): each daemon listens on a socket of its own, and the
// HTTP bridge, which these tests do not use, stays off its default port.
func TestMain(m *testing.M) {
	cleanup, err := testutil.Isolate()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// daemon starts rtbusd on a fresh socket and returns its address. A daemon that exits early
// fails the test at once, with what it logged.
func daemon(t *testing.T) string {
	t.Helper()
	build(t)
	dir, err := os.MkdirTemp("", "rtbusd") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bus.sock")
	cmd := exec.Command(bins.rtbusd, "-B", sock, "-http", "off")
	logs := &testutil.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
		os.RemoveAll(dir)
	})
	deadline := time.After(20 * time.Second)
	for !strings.Contains(logs.String(), "rtbusd started") {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("rtbusd exited (%v):\n%s", err, logs)
		case <-deadline:
			t.Fatalf("rtbusd did not start:\n%s", logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return sock
}

type result struct {
	code           int
	stdout, stderr string
}

func rtbus(t *testing.T, sock string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bins.rtbus, append([]string{"-b", sock}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func want(t *testing.T, r result, code int, stdout string) {
	t.Helper()
	if r.code != code || stdout != "*" && r.stdout != stdout {
		t.Errorf("exit %d, stdout %q (stderr %q); want exit %d, stdout %q", r.code, r.stdout, r.stderr, code, stdout)
	}
}

func TestRPCCall(t *testing.T) {
	sock := daemon(t)
	want(t, rtbus(t, sock, "", "rpc", "call", ".broker", "test"), 0, "{\"ok\": true}\n")
	want(t, rtbus(t, sock, "", "info"), 0, "{\"author\": \"rtbus\", \"version\": \"0.1.0\"}\n")
	want(t, rtbus(t, sock, "", "rpc", "call", ".broker", "benchmark.test", "b=true", "i=-7", "f=2.5", "s=hi", `q="12"`, "e="),
		0, "{\"b\": true, \"i\": -7, \"f\": 2.5, \"s\": \"hi\", \"q\": \"12\", \"e\": \"\"}\n")

	r := rtbus(t, sock, "", "rpc", "call", ".broker", "no.such")
	want(t, r, 1, "")
	if !strings.Contains(r.stderr, "-32601") {
		t.Errorf("stderr %q does not name the code", r.stderr)
	}
	r = rtbus(t, sock, "", "rpc", "call", ".broker", "test", "x=1")
	if r.code != 1 || !strings.Contains(r.stderr, "-32602") {
		t.Errorf("test with params: %+v", r)
	}
	r = rtbus(t, sock, "", "rpc", "call", "nobody", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "-32113") {
		t.Errorf("call to nobody: %+v", r)
	}
	want(t, rtbus(t, sock, "", "rpc", "call", ".broker"), 2, "")
	want(t, rtbus(t, sock, "", "rpc", "call", ".broker", "test", "novalue"), 2, "")
}

func TestClientListAndStats(t *testing.T) {
	sock := daemon(t)
	r := rtbus(t, sock, "", "-n", "lister", "client", "list")
	want(t, r, 0, "*")
	if !regexp.MustCompile(`(?m)^\.broker +internal +- +-`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^lister +local_ipc +- +`+regexp.QuoteMeta(sock)).MatchString(r.stdout) {
		t.Errorf("client list:\n%s", r.stdout)
	}
	r = rtbus(t, sock, "", "client", "list", "-json", "-f", `^\.broker$`)
	want(t, r, 0, "*")
	if !strings.HasPrefix(r.stdout, `{"clients": [{"name": ".broker", "kind": "internal", "source": null, "port": null, "r_frames": `) ||
		strings.Count(r.stdout, `"name"`) != 1 {
		t.Errorf("client list -json -f: %s", r.stdout)
	}
	r = rtbus(t, sock, "", "client", "list", "-f", "(")
	if r.code != 1 || !strings.Contains(r.stderr, "-32700") {
		t.Errorf("bad filter: %+v", r)
	}
	r = rtbus(t, sock, "", "stats")
	if r.code != 0 || !regexp.MustCompile(`(?m)^r_frames\t[1-9]`).MatchString(r.stdout) {
		t.Errorf("stats: %+v", r)
	}
	r = rtbus(t, sock, "", "stats", "-json")
	if r.code != 0 || !strings.HasPrefix(r.stdout, `{"uptime": `) {
		t.Errorf("stats -json: %+v", r)
	}
}

func TestListenSendPublishBroadcast(t *testing.T) {
	sock := daemon(t)
	cmd := exec.Command(bins.rtbus, "-b", sock, "-n", "ear", "listen", "-c", "5", "news/#")
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Bounded in time: a missing frame fails the test rather than hanging it.
	kill := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer kill.Stop()
	// The listener says so once its subscription is active.
	if line, err := bufio.NewReader(stderr).ReadString('\n'); err != nil || !strings.HasPrefix(line, "listening") {
		t.Fatalf("listener: %q %v", line, err)
	}
	want(t, rtbus(t, sock, "", "-n", "mouth", "publish", "news/a", "hello"), 0, "")
	want(t, rtbus(t, sock, "\x81\xa1x\x01", "-n", "mouth", "send", "ear", "-"), 0, "")
	want(t, rtbus(t, sock, "", "-n", "mouth", "broadcast", "*", "all"), 0, "")
	want(t, rtbus(t, sock, "", "-n", "mouth", "send", "-q", "0", "ear", "\x01\x02"), 0, "")
	want(t, rtbus(t, sock, "", "-n", "mouth", "rpc", "notify", "ear", "tick"), 0, "")
	out, err := io.ReadAll(stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	wantOut := "publish\tmouth\tnews/a\thello\n" +
		"message\tmouth\t-\t{\"x\": 1}\n" +
		"broadcast\tmouth\t-\tall\n" +
		"message\tmouth\t-\t0102\n" +
		"message\tmouth\t-\t007469636b\n"
	if string(out) != wantOut {
		t.Errorf("listen printed\n%q\nwant\n%q", out, wantOut)
	}
	r := rtbus(t, sock, "", "send", "nobody", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "not registered") {
		t.Errorf("send to nobody: %+v", r)
	}
	r = rtbus(t, sock, "", "rpc", "notify", "nobody", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "-32113") {
		t.Errorf("notify nobody: %+v", r)
	}
}

func TestExitCodes(t *testing.T) {
	sock := daemon(t)
	want(t, rtbus(t, sock, ""), 2, "")
	want(t, rtbus(t, sock, "", "bogus"), 2, "")
	want(t, rtbus(t, sock, "", "send", "only-target"), 2, "")
	want(t, rtbus(t, sock, "", "send", "-q", "9", "a", "b"), 2, "")
	want(t, rtbus(t, sock, "", "listen", "-f", "nope"), 2, "")
	want(t, rtbus(t, filepath.Join(t.TempDir(), "none.sock"), "", "stats"), 3, "")
	// A name already taken is refused at registration: no connection either.
	want(t, rtbus(t, sock, "", "-n", ".broker", "stats"), 3, "")
	if r := rtbus(t, sock, "", "-h"); r.code != 0 || !strings.Contains(r.stderr, "benchmark") {
		t.Errorf("-h: %+v", r)
	}
	// A command's -h prints its flags and is no mistake: exit 0, no error line.
	if r := rtbus(t, sock, "", "benchmark", "-h"); r.code != 0 || !strings.Contains(r.stderr, "-payload-size") || strings.Contains(r.stderr, "rtbus:") {
		t.Errorf("benchmark -h: %+v", r)
	}
}

func TestBenchmark(t *testing.T) {
	sock := daemon(t)
	r := rtbus(t, sock, "", "benchmark", "-w", "2", "-payload-size", "10", "-i", "400")
	if r.code != 0 {
		t.Fatalf("benchmark: %+v", r)
	}
	for _, stage := range []string{"rpc.call", "rpc.call+handle", "rpc.call0", "send+recv.qos.no",
		"send+recv.qos.processed", "send.qos.no", "send.qos.processed"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(stage) + ` +[0-9,]+ +[0-9.]+s$`).MatchString(r.stdout) {
			t.Errorf("no row for %s in\n%s", stage, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "rpc.call") {
		t.Errorf("no progress on stderr: %q", r.stderr)
	}
	r = rtbus(t, sock, "", "benchmark", "-s", "rpc.call,nope")
	want(t, r, 2, "")
}

func TestAddressFromEnvironment(t *testing.T) {
	sock := daemon(t)
	cmd := exec.Command(bins.rtbus, "rpc", "call", ".broker", "test")
	cmd.Env = append(os.Environ(), "RTBUS_BIND="+sock+",127.0.0.1:1")
	out, err := cmd.Output()
	if err != nil || string(out) != "{\"ok\": true}\n" {
		t.Fatalf("%q %v", out, err)
	}
}
