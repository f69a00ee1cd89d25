package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// ErrAddrInUse is returned by ListenUnix when a process answers on the socket path: its
// socket file is live and is left alone.
var ErrAddrInUse = errors.New("transport: address in use")

// probeTimeout bounds the connect that tells a live socket file from a stale one.
const probeTimeout = time.Second

// listenUnix binds a UNIX socket at path. A socket file already there is removed only if
// nothing answers on it (a stale file from an earlier run): a connect refused says so, while
// a connect accepted, or one that finds the backlog full, says a process serves it. The
// listener removes the path on Close only while it is still its own socket file, so that a
// daemon stopping late does not remove the socket of the one that replaced it.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		c, err := net.DialTimeout("unix", path, probeTimeout)
		switch {
		case err == nil:
			c.Close()
			return nil, fmt.Errorf("%w: a process answers on %s", ErrAddrInUse, path)
		case errors.Is(err, syscall.ECONNREFUSED):
			os.Remove(path) // stale: nothing listens on it
		case errors.Is(err, syscall.ENOENT):
		case errors.Is(err, os.ErrPermission):
			// Not ours to probe, nor to replace: say so rather than claim someone serves it.
			return nil, fmt.Errorf("transport: socket %s exists and may not be opened: %w", path, err)
		default: // a full backlog (EAGAIN), a timeout: something is there
			return nil, fmt.Errorf("%w: %s: %v", ErrAddrInUse, path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // Close decides
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &unixListener{UnixListener: ln, path: path, file: fi}, nil
}

// unixListener removes its socket file on Close if the path still names the file it bound
// (the same device and inode).
type unixListener struct {
	*net.UnixListener
	path string
	file os.FileInfo
	once sync.Once
}

func (l *unixListener) Close() error {
	l.once.Do(func() {
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
			os.Remove(l.path)
		}
	})
	return l.UnixListener.Close()
}
