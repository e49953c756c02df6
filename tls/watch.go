package tls

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// startWatching starts the goroutine that reloads the pair after its files change. It
// watches directories, not files: editors and certbot replace a file by renaming another
// over it, which ends a watch on the file itself. Any change in a watched directory leads to
// a reload; reload is cheap and stays quiet when the certificate is the same.
//
// A watcher that cannot start is logged, and the certificate is served without reloads.
func (f *files) startWatching(ctx context.Context, debounce time.Duration) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		f.log.Error("cannot watch tls.cert_file and tls.key_file; changes to them take effect when routied restarts",
			"cert_file", f.certFile, "key_file", f.keyFile, "err", err)
		return
	}
	watched := map[string]bool{}
	f.rewatch(w, watched)
	ctx, f.stop = context.WithCancel(ctx)
	f.done = make(chan struct{})
	go f.watch(ctx, w, watched, debounce)
}

// watch reloads the pair once its directories have been quiet for debounce, so a certificate
// and key replaced one after the other are read together. It returns when ctx is done.
func (f *files) watch(ctx context.Context, w *fsnotify.Watcher, watched map[string]bool, debounce time.Duration) {
	defer close(f.done)
	defer w.Close()
	quiet := time.NewTimer(debounce)
	quiet.Stop()
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			f.log.Debug("tls certificate directory changed", "event", ev.String())
			quiet.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			f.log.Warn("watching tls certificate files", "cert_file", f.certFile, "key_file", f.keyFile, "err", err)
		case <-quiet.C:
			f.rewatch(w, watched)
			f.reload()
		}
	}
}

// rewatch watches the directories of the configured paths and of what they resolve to now,
// and stops watching directories no longer among them. Resolving again on every reload
// follows certbot's live/ symlinks, and Kubernetes' ..data symlink, to their new targets.
// watched is owned by the watcher goroutine once it has started.
func (f *files) rewatch(w *fsnotify.Watcher, watched map[string]bool) {
	want := map[string]bool{}
	for _, p := range []string{f.certFile, f.keyFile} {
		want[filepath.Dir(p)] = true
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			want[filepath.Dir(resolved)] = true
		}
	}
	for dir := range watched {
		if !want[dir] {
			// It may be gone already, and its watch with it.
			_ = w.Remove(dir)
			delete(watched, dir)
		}
	}
	for dir := range want {
		// Adding a watched directory again is harmless, and restores a watch the kernel
		// dropped when the directory was replaced.
		if err := w.Add(dir); err != nil {
			if watched[dir] {
				delete(watched, dir)
			}
			f.log.Error("cannot watch tls certificate directory; changes in it take effect when routied restarts",
				"dir", dir, "err", err)
			continue
		}
		watched[dir] = true
	}
}
