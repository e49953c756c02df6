package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Listen listens on the unix socket path with permission bits mode, creating the parent
// directory (0755) if it is missing. A socket file already at path is dialled first: if a
// process answers, Listen refuses, so a second routied cannot steal the socket of a running
// one; if nothing answers, the file is a leftover of a routied that died and is replaced.
//
// Closing the listener removes the socket file only while it is still the one Listen
// created: a routied that is shutting down must not unlink the socket of its successor.
func Listen(path string, mode os.FileMode) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket %s: cannot create its directory: %w", path, err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// Go would unlink the path on Close whoever owns it by then; socketListener checks first.
	ln.SetUnlinkOnClose(false)
	// Until this chmod the socket has the umask's bits; a unix socket needs write permission
	// to connect, and routied's default umask (022) grants that to the owner alone.
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &socketListener{UnixListener: ln, path: path, created: fi}, nil
}

// removeStale removes a socket at path that no process answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s exists and is not a socket (%s); remove it or set control.socket to another path", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s is in use by a running routied; stop it first (systemctl stop routied)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket %s exists and cannot be checked: %w; if no routied is running, remove it", path, err)
	}
	// Nobody listens: a leftover from a routied that did not shut down cleanly.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket %s is stale but cannot be removed: %w", path, err)
	}
	return nil
}

// socketListener removes its socket file on Close only if it is still the file it created.
type socketListener struct {
	*net.UnixListener
	path    string
	created os.FileInfo
	once    sync.Once
	keep    atomic.Bool // never remove the file: another process serves the same socket
}

// SetUnlinkOnClose(false) keeps the socket file when the listener closes. A zero-downtime
// upgrade hands the socket to the new routied, which serves the very same file; the old one
// must leave it in place (tableflip calls this when it takes the listener).
func (l *socketListener) SetUnlinkOnClose(unlink bool) { l.keep.Store(!unlink) }

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	if l.keep.Load() {
		return err
	}
	l.once.Do(func() {
		fi, err := os.Lstat(l.path)
		// Same inode and the same modification time: an inode number alone can be reused by
		// a successor's socket created after ours was removed.
		if err == nil && os.SameFile(fi, l.created) && fi.ModTime().Equal(l.created.ModTime()) {
			os.Remove(l.path)
		}
	})
	return err
}
