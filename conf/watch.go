package conf

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a Watcher waits for the file to be quiet before reloading it.
const DefaultDebounce = 100 * time.Millisecond

// Watcher reloads a config file when it changes on disk and hands each result to its caller,
// which decides what to apply (see RestartNeeded); an invalid file never replaces a running
// config here.
//
// It watches the file's directory rather than the file: editors and config managers save by
// writing a temporary file and renaming it over the old one, which a watch on the old file
// would never see. A symlinked config file is watched by its link's name, so edits to the
// link's target in another directory are not seen.
type Watcher struct {
	// Debounce is how long the file must be quiet after an event before it is read, so that
	// an editor's truncate-write-rename burst is read once, complete. Default
	// DefaultDebounce. Set it before Run.
	Debounce time.Duration

	path string
	fs   *fsnotify.Watcher

	// last, failing and startErr are owned by the goroutine running Run.
	last     Config // the config last loaded successfully
	failing  bool   // the last load failed, so the next good one is reported even if unchanged
	startErr error  // NewWatcher's own load failed; Run reports it first
}

// Watch watches the config file at path until ctx is done; see NewWatcher and Run. It returns
// an error at once if the file's directory cannot be watched, and nil when ctx is done.
func Watch(ctx context.Context, path string, onChange func(Config), onError func(error)) error {
	w, err := NewWatcher(path)
	if err != nil {
		return err
	}
	return w.Run(ctx, onChange, onError)
}

// NewWatcher starts watching the directory of the config file at path and reads the file, so
// that Run reports only changes from now on. Call it right after Load: an edit between the two
// is not reported. Edits made after NewWatcher returns wait, queued, until Run reads them.
// Run must be called to release the watch.
func NewWatcher(path string) (*Watcher, error) {
	fs, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := fs.Add(dir); err != nil {
		fs.Close()
		return nil, fmt.Errorf("watch config directory %s: %w", dir, err)
	}
	w := &Watcher{Debounce: DefaultDebounce, path: path, fs: fs}
	// Read only once the watch is in place, so that an edit made meanwhile is still an event.
	w.last, w.startErr = Load(path)
	return w, nil
}

// Run reloads the file after each burst of changes to it until ctx is done, then releases the
// watch and returns nil.
//
// It calls onChange with the new config when the file is valid and differs from the last
// valid load (a comment-only edit calls nothing), or is valid again after a failed load, so
// that the caller can clear an error it shows. It calls onError with the error of every load
// that fails (as Load words it; the caller keeps its running config), including one at the
// start if the file was already invalid when NewWatcher read it, and with errors of the watch
// itself. A nil callback is skipped.
//
// The callbacks run on Run's goroutine, one at a time; a slow callback delays the next reload,
// never overlaps it. Call Run once.
func (w *Watcher) Run(ctx context.Context, onChange func(Config), onError func(error)) error {
	// Close also waits for fsnotify's reading goroutine to exit.
	defer w.fs.Close()
	if onChange == nil {
		onChange = func(Config) {}
	}
	if onError == nil {
		onError = func(error) {}
	}

	if w.startErr != nil {
		w.failing = true
		onError(w.startErr)
	}
	debounce := w.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	quiet := time.NewTimer(debounce)
	quiet.Stop()
	defer quiet.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fs.Events:
			if !ok {
				return fmt.Errorf("watch config %s: the watch ended unexpectedly; restart routied to watch again", w.path)
			}
			if w.concerns(ev) {
				quiet.Reset(debounce)
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return fmt.Errorf("watch config %s: the watch ended unexpectedly; restart routied to watch again", w.path)
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were dropped, maybe ours: reading the file again is the cure.
				quiet.Reset(debounce)
				continue
			}
			onError(fmt.Errorf("watch config %s: %w", w.path, err))
		case <-quiet.C:
			if c, err := w.reload(); err != nil {
				onError(err)
			} else if c != nil {
				onChange(*c)
			}
		}
	}
}

// concerns reports whether ev may have changed the config file. Other files in the directory
// are ignored, and so is a bare attribute change (touch, chmod): the content is the same.
func (w *Watcher) concerns(ev fsnotify.Event) bool {
	return filepath.Base(ev.Name) == filepath.Base(w.path) && ev.Op != fsnotify.Chmod
}

// reload reads the file and returns the config to report: nil when it is the one last
// reported and no load has failed since.
func (w *Watcher) reload() (*Config, error) {
	c, err := Load(w.path)
	if err != nil {
		w.failing = true
		return nil, err
	}
	if !w.failing && reflect.DeepEqual(c, w.last) {
		return nil, nil
	}
	w.last, w.failing = c, false
	return &c, nil
}
