package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/routie/routie/conf"
)

// watchConfig applies valid edits of the config file live and refuses invalid ones, keeping
// the running config.
func (d *daemon) watchConfig(ctx context.Context, wg *sync.WaitGroup) error {
	d.mu.Lock()
	path := d.cfg.Path
	d.mu.Unlock()
	w, err := conf.NewWatcher(path)
	if err != nil {
		return err
	}
	wg.Go(func() {
		_ = w.Run(ctx, func(next conf.Config) { d.apply(ctx, next) }, func(err error) {
			d.log.Error("config edit refused; still running the previous config", "file", path, "err", err)
		})
	})
	return nil
}

// apply switches the running daemon to next, for everything that can change live.
func (d *daemon) apply(ctx context.Context, next conf.Config) {
	d.mu.Lock()
	prev := d.cfg
	d.cfg = next
	d.mu.Unlock()

	if keys := conf.RestartNeeded(prev, next); len(keys) > 0 {
		d.log.Warn("config changes that need new listeners were saved but not applied; apply them without dropping a request: systemctl reload routied (or send routied SIGHUP)",
			"keys", strings.Join(keys, ", "))
	}
	d.logs.apply(next.Log)
	d.proxy.SetAccessLog(next.Log.Access)
	d.proxy.SetMaxBody(next.Limits.MaxBody)
	d.conns.SetMax(next.Limits.MaxConnsPerClient)
	d.sw.Update(settingsFrom(next))
	d.deployer.Update(deploySettingsFrom(next))
	d.redirect.Store(next.TLS.Redirect && prev.Listen.HTTPS != "")
	d.hsts.Store(int64(next.TLS.HSTS / time.Second))
	if d.certs != nil {
		// Update changes nothing unless the certificates' source changed (mode, domains,
		// files, ACME settings).
		if err := d.certs.Update(ctx, next.TLS); err != nil {
			d.log.Error("new TLS settings refused; still serving the previous certificate", "err", err)
		}
	}
	d.log.Info("config applied", "file", next.Path)
}
