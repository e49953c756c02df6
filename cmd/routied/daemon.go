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
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/control"
	"github.com/routie/routie/deploy"
	"github.com/routie/routie/health"
	"github.com/routie/routie/limits"
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
	deployer *deploy.Deployer
	certs    *routietls.Certificates // nil when listen.https is off
	redirect atomic.Bool             // plain HTTP gets a 308 to HTTPS
	hsts     atomic.Int64            // tls.hsts in seconds; 0 sends no header
	conns    *limits.ConnCap         // limits.max_conns_per_client on the public listeners
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

func listenTCP(key, addr string) (net.Listener, error) {
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

// run serves until ctx ends (SIGTERM: stop for good) or a newer routied took over after an
// upgrade; either way it then finishes its in-flight work and returns.
func (d *daemon) run(ctx context.Context, pidFile string) error {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.State.Dir, 0o755); err != nil {
		return fmt.Errorf("state.dir %s: %w (create it or point state.dir somewhere writable)", cfg.State.Dir, err)
	}
	notify := notifier{log: d.log}

	// Every listener comes through the upgrader: inherited from the routied this one
	// replaces, or opened here. They are all bound before anything starts, so a port that is
	// taken fails the start at once instead of leaving half a daemon running.
	upg, err := newUpgrader(pidFile, d.log)
	if err != nil {
		return err
	}
	defer upg.Stop()
	var httpLn, httpsLn net.Listener
	if cfg.Listen.HTTP != "" {
		if httpLn, err = upg.listen("tcp", cfg.Listen.HTTP, func() (net.Listener, error) { return listenTCP("listen.http", cfg.Listen.HTTP) }); err != nil {
			return err
		}
	}
	if cfg.Listen.HTTPS != "" {
		if httpsLn, err = upg.listen("tcp", cfg.Listen.HTTPS, func() (net.Listener, error) { return listenTCP("listen.https", cfg.Listen.HTTPS) }); err != nil {
			return err
		}
	}
	ctlLn, err := upg.listen("unix", cfg.Control.Socket, func() (net.Listener, error) { return control.Listen(cfg.Control.Socket, cfg.Control.Mode) })
	if err != nil {
		return err
	}
	// A metrics address that cannot be bound is logged, not fatal: routied's job is the
	// traffic, and the failed scrapes alert on their own.
	var metricsLn net.Listener
	if cfg.Metrics.Listen != "" {
		if metricsLn, err = upg.listen("tcp", cfg.Metrics.Listen, func() (net.Listener, error) { return listenTCP("metrics.listen", cfg.Metrics.Listen) }); err != nil {
			d.log.Error("serving no metrics", "err", err)
		}
	}
	d.conns = capConns(cfg.Limits, d.log, &httpLn, &httpsLn)

	// certmagic reports a few things through the standard log package; send them to the
	// same handler as everything else.
	slog.SetDefault(d.log)

	var tlsConfig *tls.Config
	if httpsLn != nil {
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
	d.proxy.SetMaxBody(cfg.Limits.MaxBody)
	initial := net.JoinHostPort(cfg.Upstream.Host, strconv.Itoa(cfg.Upstream.Initial))
	d.sw, err = switcher.New(d.proxy, health.NewChecker(), switcher.NewStore(cfg.State.Dir), settingsFrom(cfg), initial, d.log)
	if err != nil {
		return err
	}
	defer d.sw.Close()

	history, notes, err := deploy.OpenHistory(cfg.State.Dir)
	if err != nil {
		return err
	}
	for _, note := range notes {
		d.log.Warn(note)
	}
	d.deployer = deploy.New(d.sw, history, deploySettingsFrom(cfg), d.log)

	ctl := startControl(ctlLn, cfg.Control, d.sw, upg, d.log, control.WithCertificates(certsAPI{d}), control.WithDeployer(d.deployer))
	var ms *metricsServer
	if metricsLn != nil {
		ms = startMetrics(metricsLn, d.sw, d.certs, d.conns, d.log)
		d.log.Info("serving metrics", "url", "http://"+metricsLn.Addr().String()+"/metrics")
	}

	var servers []*drainingServer
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	if httpsLn != nil {
		srv := newDrainingServer(applyServerLimits(newServer(withHSTS(d.proxy, &d.hsts), d.log, tlsConfig), cfg.Limits), httpsLn)
		servers = append(servers, srv)
		wg.Go(func() { errs <- serve(srv.srv, httpsLn, true) })
		d.log.Info("serving HTTPS", "addr", httpsLn.Addr().String(), "tls", cfg.TLS.Mode, "domains", cfg.TLS.Domains, "hsts", cfg.TLS.HSTS)
	}
	if httpLn != nil {
		d.redirect.Store(cfg.TLS.Redirect && httpsLn != nil)
		srv := newDrainingServer(applyServerLimits(newServer(d.plainHTTP(redirectToHTTPS(cfg.Listen.HTTPS)), d.log, nil), cfg.Limits), httpLn)
		servers = append(servers, srv)
		wg.Go(func() { errs <- serve(srv.srv, httpLn, false) })
		d.log.Info("serving HTTP", "addr", httpLn.Addr().String(), "redirect_to_https", d.redirect.Load())
	}

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	wg.Go(func() { d.sw.Run(runCtx) })
	wg.Go(func() { d.deployer.Run(runCtx) })
	if cfg.Path != "" {
		if err := d.watchConfig(runCtx, &wg); err != nil {
			d.log.Warn("config file changes will not be seen; restart routied to apply edits", "err", err)
		}
	}
	if interval := watchdogInterval(upg.HasParent()); interval > 0 {
		wg.Go(func() { notify.watchdog(runCtx, interval) })
	}

	if err := upg.Ready(); err != nil {
		d.log.Error("cannot write the PID file; systemd may not follow an upgrade", "err", err)
	}
	notify.ready()
	if upg.HasParent() {
		d.log.Info("routied upgraded: serving on the inherited sockets; the previous process drains", "active", d.sw.Status().Active.Addr, "pid", os.Getpid())
	} else {
		d.log.Info("routied ready", "active", d.sw.Status().Active.Addr, "control", cfg.Control.Socket, "config", cfg.Path, "pid", os.Getpid())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var failure error
	upgraded := false
wait:
	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping: finishing in-flight requests", "drain_timeout", cfg.Drain.Timeout)
			break wait
		case <-upg.Exit():
			upgraded = true
			d.log.Info("a new routied took over; finishing in-flight work here", "drain_timeout", cfg.Drain.Timeout)
			break wait
		case failure = <-errs:
			d.log.Error("a listener failed; stopping", "err", failure)
			break wait
		case <-hup:
			wg.Go(func() { upg.onSignal(ctl.stopAccepting) })
		}
	}
	if !upgraded {
		notify.stopping()
		upg.Stop()
	}
	// A second SIGTERM while draining means: now.
	hurry := make(chan os.Signal, 1)
	signal.Notify(hurry, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(hurry)
	go func() {
		if _, ok := <-hurry; ok {
			d.log.Warn("second signal: exiting without waiting for in-flight requests")
			os.Exit(1)
		}
	}()

	d.mu.Lock()
	drainCfg := d.cfg.Drain
	d.mu.Unlock()
	drainCtx, cancel := context.WithTimeout(context.Background(), drainCfg.Timeout)
	defer cancel()
	if ms != nil {
		// First, so that after an upgrade scrapes reach the new process only.
		ms.stop(drainCtx)
	}
	// The control socket closes here at once too, while its requests in flight (the
	// upgrade's own answer, a switch still gating) finish: after an upgrade, every new
	// routiectl command must reach the new process. Left open while the public servers
	// drain, the old process would take some of them and, say, switch a target that
	// nobody is served from any more.
	var stopping sync.WaitGroup
	stopping.Go(func() { ctl.stop(drainCtx) })
	for _, srv := range servers {
		stopping.Go(func() {
			if !srv.drain(drainCtx) {
				d.log.Warn("in-flight requests were cut at drain.timeout", "drain_timeout", drainCfg.Timeout)
			}
		})
	}
	stopping.Wait()
	stopRun()
	if upgraded {
		// WebSockets and event streams cannot move to the new process: give them
		// drain.streams to finish here, as a switch does for a retired target.
		d.waitStreams(drainCfg.Streams)
	}
	d.sw.Close() // closes the streams still open
	wg.Wait()
	d.log.Info("stopped", "pid", os.Getpid())
	return failure
}

// waitStreams waits until no stream is open on any target, or grace passes.
func (d *daemon) waitStreams(grace time.Duration) {
	deadline := time.Now().Add(grace)
	for d.sw.OpenStreams() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
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
