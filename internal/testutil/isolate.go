package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Isolate keeps the programs that a package's tests start (rtbusd, rtbus) away from the
// user's files and default addresses, whatever the test forgets to pass: HOME and the XDG
// base directories point into a fresh temporary directory, so the default data directory and
// the default socket are in there; every RTBUS_* variable of the user's environment is unset;
// RTBUS_HTTP=off and RTBUS_INTERNAL=off keep the daemon's HTTP bridge and internal API off
// their default ports, 127.0.0.1:8080 and 8081 (a test that wants one passes
// -http 127.0.0.1:0 or -internal 127.0.0.1:0 and reads the address from the log); and
// RTBUS_NTP=off keeps its clock from asking the public NTP pool.
//
// The go command's own directories are pinned first, so `go build` in a test still uses the
// user's build and module caches and settings. Call it from TestMain before m.Run; cleanup
// removes the directory and must run before os.Exit.
func Isolate() (cleanup func(), err error) {
	vars := []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOENV"}
	out, err := exec.Command("go", append([]string{"env"}, vars...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	vals := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(vals) != len(vars) {
		return nil, fmt.Errorf("go env: unexpected output %q", out)
	}
	home, err := os.MkdirTemp("", "rtbus-home")
	if err != nil {
		return nil, err
	}
	set := map[string]string{
		"HOME":            home,
		"XDG_DATA_HOME":   filepath.Join(home, "data"),
		"XDG_CONFIG_HOME": filepath.Join(home, "config"),
		"XDG_CACHE_HOME":  filepath.Join(home, "cache"),
		"XDG_STATE_HOME":  filepath.Join(home, "state"),
		"XDG_RUNTIME_DIR": filepath.Join(home, "run"),
	}
	for i, v := range vars {
		set[v] = vals[i]
	}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "RTBUS_") {
			os.Unsetenv(name)
		}
	}
	set["RTBUS_HTTP"] = "off"
	set["RTBUS_NTP"] = "off"      // rtbusd asks public NTP servers by default; tests stay on loopback
	set["RTBUS_INTERNAL"] = "off" // its default port, 127.0.0.1:8081, likewise
	for k, v := range set {
		os.Setenv(k, v)
	}
	if err := os.Mkdir(set["XDG_RUNTIME_DIR"], 0o700); err != nil {
		os.RemoveAll(home)
		return nil, err
	}
	return func() { os.RemoveAll(home) }, nil
}
