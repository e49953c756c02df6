package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/control"
	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
	routietls "github.com/routie/routie/tls"
)

// daemon wires the packages together; it holds no logic of its own beyond start, live
// reconfiguration and stop.
type daemon struct {
	logs *logOutput
	log  *slog.Logger

	mu  sync.Mutex // guards cfg
	cfg conf.Config

	proxy    *proxy.Proxy
	sw       *switcher.Switcher
	certs    *routietls.Certificates // nil when listen.https is off
	redirect atomic.Bool             // plain HTTP gets a 308 to HTTPS
	hsts     atomic.Int64            // tls.hsts in seconds; 0 sends no header
}

func newDaemon(cfg conf.Config, logs *logOutput, log *slog.Logger) *daemon {
	return &daemon{cfg: cfg, logs: logs, log: log}
}

// settingsFrom picks the switcher's settings out of the config.
func settingsFrom(c conf.Config) switcher.Settings {
	return switcher.Settings{
		Host: c.Upstream.Host,
		Probe: health.Probe{
			Path:       c.Health.Path,
			Timeout:    c.Health.Timeout,
			ExpectBody: c.Health.ExpectBody,
		},
		Interval:     c.Health.Interval,
		Passes:       c.Health.Passes,
		Wait:         c.Health.Wait,
		DrainTimeout: c.Drain.Timeout,
		StreamGrace:  c.Drain.Streams,
	}
}

// listeners are bound before anything starts, so a port that is taken fails the start at
// once with a message, instead of half a daemon running.
type listeners struct {
	http, https, control net.Listener
}

func (l *listeners) close() {
	for _, ln := range []net.Listener{l.http, l.https, l.control} {
		if ln != nil {
			ln.Close()
		}
	}
}

func listenTCP(key, addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	switch {
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("%s %q: permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE (the systemd unit grants it); or set %s to a port above 1024", key, addr, key)
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%s %q: address already in use: another server (nginx?) holds it; stop it (ss -ltnp shows who) or change %s", key, addr, key)
	}
	return nil, fmt.Errorf("%s %q: %w", key, addr, err)
}

// run serves until ctx ends, then stops gracefully.
func (d *daemon) run(ctx context.Context) error {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.State.Dir, 0o755); err != nil {
		return fmt.Errorf("state.dir %s: %w (create it or point state.dir somewhere writable)", cfg.State.Dir, err)
	}

	var ls listeners
	defer ls.close()
	var err error
	if ls.http, err = listenTCP("listen.http", cfg.Listen.HTTP); err != nil {
		return err
	}
	if ls.https, err = listenTCP("listen.https", cfg.Listen.HTTPS); err != nil {
		return err
	}

	// certmagic reports a few things through the standard log package; send them to the
	// same handler as everything else.
	slog.SetDefault(d.log)

	var tlsConfig *tls.Config
	if ls.https != nil {
		// With tls.mode "acme", New returns at once: stored certificates are served, and
		// missing ones are obtained in the background, answering challenges on the
		// listeners above.
		d.certs, err = routietls.New(ctx, cfg, d.log)
		if err != nil {
			return err
		}
		defer d.certs.Close()
		tlsConfig = d.certs.TLSConfig()
	}
	d.hsts.Store(int64(cfg.TLS.HSTS / time.Second))

	d.proxy = proxy.New(d.log)
	d.proxy.SetAccessLog(cfg.Log.Access)
	initial := net.JoinHostPort(cfg.Upstream.Host, strconv.Itoa(cfg.Upstream.Initial))
	d.sw, err = switcher.New(d.proxy, health.NewChecker(), switcher.NewStore(cfg.State.Dir), settingsFrom(cfg), initial, d.log)
	if err != nil {
		return err
	}
	defer d.sw.Close()

	ctl, err := startControl(cfg.Control, d.sw, d.log, control.WithCertificates(certsAPI{d}))
	if err != nil {
		return err
	}

	var servers []*http.Server
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	if ls.https != nil {
		srv := newServer(withHSTS(d.proxy, &d.hsts), d.log, tlsConfig)
		servers = append(servers, srv)
		wg.Go(func() { errs <- serve(srv, ls.https, true) })
		d.log.Info("serving HTTPS", "addr", ls.https.Addr().String(), "tls", cfg.TLS.Mode, "domains", cfg.TLS.Domains, "hsts", cfg.TLS.HSTS)
	}
	if ls.http != nil {
		d.redirect.Store(cfg.TLS.Redirect && ls.https != nil)
		srv := newServer(d.plainHTTP(redirectToHTTPS(cfg.Listen.HTTPS)), d.log, nil)
		servers = append(servers, srv)
		wg.Go(func() { errs <- serve(srv, ls.http, false) })
		d.log.Info("serving HTTP", "addr", ls.http.Addr().String(), "redirect_to_https", d.redirect.Load())
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	wg.Go(func() { d.sw.Run(runCtx) })
	if cfg.Path != "" {
		if err := d.watchConfig(runCtx, &wg); err != nil {
			d.log.Warn("config file changes will not be seen; restart routied to apply edits", "err", err)
		}
	}
	d.log.Info("routied ready", "active", d.sw.Status().Active.Addr, "control", cfg.Control.Socket, "config", cfg.Path)

	var failure error
	select {
	case <-ctx.Done():
		d.log.Info("stopping: finishing in-flight requests", "drain_timeout", cfg.Drain.Timeout)
	case failure = <-errs:
		d.log.Error("a listener failed; stopping", "err", failure)
	}

	d.mu.Lock()
	grace := d.cfg.Drain.Timeout
	d.mu.Unlock()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var stopping sync.WaitGroup
	for _, srv := range servers {
		stopping.Go(func() {
			if err := shutdown(shutdownCtx, srv); err != nil {
				d.log.Warn("in-flight requests were cut at drain.timeout", "err", err)
				srv.Close()
			}
		})
	}
	stopping.Wait()
	ctl.stop(shutdownCtx)
	stopRun()
	d.sw.Close() // closes WebSockets and streams, which Shutdown leaves alone
	wg.Wait()
	d.log.Info("stopped")
	return failure
}

// plainHTTP serves plain-HTTP requests: an ACME http-01 challenge for a certificate being
// obtained, else a redirect to HTTPS, or the proxy when tls.redirect is false. The choice
// follows the config file live.
func (d *daemon) plainHTTP(redirect http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.certs != nil && d.certs.HandleHTTPChallenge(w, r) {
			return
		}
		if d.redirect.Load() {
			redirect.ServeHTTP(w, r)
			return
		}
		d.proxy.ServeHTTP(w, r)
	})
}
