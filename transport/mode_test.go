package transport

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rtbus/rtbus/bus"
)

// The file mode of a UNIX socket comes from Config.UnixMode; TCP and WebSocket listeners,
// which have no file, take the same Config.
func TestUnixModeFromConfig(t *testing.T) {
	b := bus.New()
	s := NewServer(b)
	t.Cleanup(func() {
		s.Close()
		b.Close()
	})
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o600, 0o660} {
		path := filepath.Join(dir, mode.String()[1:]+".sock")
		if _, err := s.Listen(path, Config{UnixMode: mode}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("socket mode %v, want %v", got, mode)
		}
	}
	for _, a := range []string{"127.0.0.1:0", "ws://127.0.0.1:0"} {
		if _, err := s.Listen(a, Config{UnixMode: 0o600}); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
}
