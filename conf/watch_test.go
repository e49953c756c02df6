package conf

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// wait bounds every wait for a callback; a healthy run takes milliseconds.
const wait = 5 * time.Second

// watching is a Watcher running on a config file in a temp directory, with its callbacks
// delivered on channels.
type watching struct {
	path    string
	changes chan Config
	errs    chan error
}

// startWatching writes content to a config file in a fresh directory and runs a Watcher on
// it until the test ends, then checks that Run returned nil.
func startWatching(t *testing.T, content string) *watching {
	t.Helper()
	w := &watching{
		path:    filepath.Join(t.TempDir(), "routie.toml"),
		changes: make(chan Config, 16),
		errs:    make(chan error, 16),
	}
	writeFile(t, w.path, content)
	watcher, err := NewWatcher(w.path)
	if err != nil {
		t.Fatal(err)
	}
	// Long enough that one os.WriteFile (truncate, then write) is read once, complete;
	// short enough to keep the tests fast.
	watcher.Debounce = 30 * time.Millisecond

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- watcher.Run(ctx, func(c Config) { w.changes <- c }, func(err error) { w.errs <- err })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil once ctx is done", err)
			}
		case <-time.After(wait):
			t.Errorf("Run did not return within %v of ctx being done", wait)
		}
	})
	return w
}

func (w *watching) nextChange(t *testing.T) Config {
	t.Helper()
	select {
	case c := <-w.changes:
		return c
	case err := <-w.errs:
		t.Fatalf("got onError(%v), want onChange", err)
	case <-time.After(wait):
		t.Fatalf("no onChange within %v", wait)
	}
	panic("unreachable")
}

func (w *watching) nextError(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.errs:
		return err
	case c := <-w.changes:
		t.Fatalf("got onChange(%+v), want onError", c)
	case <-time.After(wait):
		t.Fatalf("no onError within %v", wait)
	}
	panic("unreachable")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// saveByRename saves as editors and config managers do: a temporary file in the same
// directory, renamed over the old one.
func saveByRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchReportsAValidEdit(t *testing.T) {
	w := startWatching(t, "[health]\npasses = 2\n")
	writeFile(t, w.path, "[health]\npasses = 5\n")
	c := w.nextChange(t)
	if c.Health.Passes != 5 || c.Path != w.path {
		t.Errorf("onChange got passes = %d, Path = %q; want 5, %q", c.Health.Passes, c.Path, w.path)
	}
}

func TestWatchReportsAnInvalidEditThenItsFix(t *testing.T) {
	w := startWatching(t, "[health]\npasses = 2\n")
	writeFile(t, w.path, "[health]\npasses = 2\ninterval = \"5\"\n")
	err := w.nextError(t)
	var e *Error
	if !errors.As(err, &e) || e.Key != "health.interval" || e.Line != 3 || e.File != w.path {
		t.Fatalf("onError got %v, want the health.interval error at %s:3", err, w.path)
	}

	// Fixed back to what it was: the caller hears that the file is good again, even
	// though the config is the one it runs.
	saveByRename(t, w.path, "[health]\npasses = 2\n")
	if c := w.nextChange(t); c.Health.Passes != 2 || c.Health.Interval != time.Second {
		t.Errorf("onChange after the fix got passes = %d, interval = %v; want 2, 1s", c.Health.Passes, c.Health.Interval)
	}
}

func TestWatchSeesARenameOverTheFile(t *testing.T) {
	w := startWatching(t, "[log]\nlevel = \"info\"\n")
	saveByRename(t, w.path, "[log]\nlevel = \"debug\"\n")
	if c := w.nextChange(t); c.Log.Level != "debug" {
		t.Errorf("onChange got log.level = %q, want debug", c.Log.Level)
	}
	// The file watched is now a different inode; later edits must still be seen.
	saveByRename(t, w.path, "[log]\nlevel = \"warn\"\n")
	if c := w.nextChange(t); c.Log.Level != "warn" {
		t.Errorf("second onChange got log.level = %q, want warn", c.Log.Level)
	}
}

func TestWatchIgnoresOtherFilesInTheDirectory(t *testing.T) {
	w := startWatching(t, "[health]\npasses = 2\n")
	dir := filepath.Dir(w.path)
	// Not TOML: a watcher that loaded the file an event names, rather than its own, would
	// report an error.
	writeFile(t, filepath.Join(dir, "other.toml"), "not toml")
	writeFile(t, filepath.Join(dir, "routie.toml.swp"), "not toml")
	writeFile(t, filepath.Join(dir, "routie.toml~"), "not toml")
	if err := os.Rename(filepath.Join(dir, "other.toml"), filepath.Join(dir, "moved.toml")); err != nil {
		t.Fatal(err)
	}
	saveByRename(t, w.path, "[health]\npasses = 7\n")

	if c := w.nextChange(t); c.Health.Passes != 7 {
		t.Errorf("onChange got passes = %d, want 7", c.Health.Passes)
	}
	select {
	case c := <-w.changes:
		t.Errorf("a second onChange(%+v) for one edit", c)
	case err := <-w.errs:
		t.Errorf("onError(%v) for another file", err)
	default:
	}
}

func TestWatcherConcernsOnlyContentChangesToItsFile(t *testing.T) {
	w := &Watcher{path: "/etc/routie/routie.toml"}
	for _, tc := range []struct {
		ev   fsnotify.Event
		want bool
	}{
		{fsnotify.Event{Name: "/etc/routie/routie.toml", Op: fsnotify.Write}, true},
		{fsnotify.Event{Name: "/etc/routie/routie.toml", Op: fsnotify.Create}, true},
		{fsnotify.Event{Name: "/etc/routie/routie.toml", Op: fsnotify.Rename}, true},
		{fsnotify.Event{Name: "/etc/routie/routie.toml", Op: fsnotify.Remove}, true},
		{fsnotify.Event{Name: "/etc/routie/routie.toml", Op: fsnotify.Write | fsnotify.Chmod}, true},
		{fsnotify.Event{Name: "/etc/routie/routie.toml", Op: fsnotify.Chmod}, false},
		{fsnotify.Event{Name: "/etc/routie/routie.toml.swp", Op: fsnotify.Write}, false},
		{fsnotify.Event{Name: "/etc/routie/other.toml", Op: fsnotify.Create}, false},
	} {
		if got := w.concerns(tc.ev); got != tc.want {
			t.Errorf("concerns(%v) = %t, want %t", tc.ev, got, tc.want)
		}
	}
}

func TestWatchReportsAFileAlreadyInvalidAtStart(t *testing.T) {
	w := startWatching(t, "[health]\npasses = 0\n")
	if err := w.nextError(t); err == nil {
		t.Fatal("onError(nil)")
	}
	writeFile(t, w.path, "[health]\npasses = 1\n")
	if c := w.nextChange(t); c.Health.Passes != 1 {
		t.Errorf("onChange got passes = %d, want 1", c.Health.Passes)
	}
}

func TestWatchReportsARemovedFile(t *testing.T) {
	w := startWatching(t, "")
	if err := os.Remove(w.path); err != nil {
		t.Fatal(err)
	}
	if err := w.nextError(t); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("onError got %v, want a not-exist error", err)
	}
}

func TestWatchFailsAtOnceWhenTheDirectoryCannotBeWatched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "routie.toml")
	done := make(chan error, 1)
	go func() { done <- Watch(t.Context(), path, nil, nil) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Watch of a missing directory returned nil")
		}
	case <-time.After(wait):
		t.Fatalf("Watch of a missing directory did not return within %v", wait)
	}
}

func TestWatchReturnsNilWhenContextIsDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routie.toml")
	writeFile(t, path, "")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, path, nil, nil) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v, want nil", err)
		}
	case <-time.After(wait):
		t.Fatalf("Watch did not return within %v of ctx being done", wait)
	}
}
