// Package tls turns routied's [conf.TLS] into the *tls.Config of its HTTPS listener: a
// self-signed certificate for local development, or a certificate and key from files that is
// reloaded when the files change. Certificates are swapped without dropping connections.
package tls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/routie/routie/conf"
)

// ErrOff is what New and Update return, wrapped, for tls.mode "off": there is no certificate
// to serve, and routied runs without its HTTPS listener.
var ErrOff = errors.New(`tls.mode is "off"`)

// Certificates is the certificate routied's HTTPS listener serves. It is made by New from the
// tls section of the config, changed live by Update, and stopped by Close.
//
// Every handshake reads the current certificate through one atomic load, so Update and a
// reload of changed files replace it without a lock and without touching open connections:
// they keep the certificate they were established with.
type Certificates struct {
	log      *slog.Logger
	stateDir string
	opts     options

	// ctx bounds every goroutine a source starts (the files watcher). It lives as long as the
	// Certificates, not one call: it is New's ctx, and Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	// current is read on every handshake. Update replaces it whole, so a handshake sees the
	// old source or the new one, never one being built or closed.
	current atomic.Pointer[active]

	// mu serializes Update and Close and guards cfg and closed. Handshakes never take it.
	mu     sync.Mutex
	cfg    conf.TLS
	closed bool
}

// active wraps a source so it can sit behind an atomic.Pointer.
type active struct{ source }

// source is where served certificates come from. Self-signed and files sources hold one
// certificate at a time; an ACME source can pick one per ClientHelloInfo.ServerName.
type source interface {
	// GetCertificate has the contract of tls.Config.GetCertificate. It is called
	// concurrently, on every handshake, and must not block on I/O it can avoid.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// info describes the certificate being served now.
	info() Info
	// close stops the goroutines the source started and waits until they have exited.
	close()
}

// options are the knobs tests turn. New uses defaultOptions.
type options struct {
	// debounce is how long the files watcher waits after the last change before it reloads,
	// so a certificate and key replaced one after the other are read as a pair. Default 200ms.
	debounce time.Duration
	// now is the clock for validity checks and for new self-signed certificates.
	// Default time.Now.
	now func() time.Time
}

func defaultOptions() options {
	return options{debounce: 200 * time.Millisecond, now: time.Now}
}

// New loads or makes the certificate that c describes. stateDir is conf.State.Dir: mode
// "self-signed" keeps its certificate in stateDir/tls. Mode "files" also watches the
// certificate and key files and reloads them when they change, until ctx is done or Close is
// called. log may be nil.
//
// Mode "off" returns an error wrapping ErrOff rather than a nil config, so a listener can
// never start without a certificate: routied checks the mode and skips HTTPS instead.
func New(ctx context.Context, c conf.TLS, stateDir string, log *slog.Logger) (*Certificates, error) {
	return newCertificates(ctx, c, stateDir, log, defaultOptions())
}

func newCertificates(ctx context.Context, c conf.TLS, stateDir string, log *slog.Logger, o options) (*Certificates, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	certs := &Certificates{log: log, stateDir: stateDir, opts: o, cfg: c}
	certs.ctx, certs.cancel = context.WithCancel(ctx)
	src, err := certs.open(c)
	if err != nil {
		certs.cancel()
		return nil, err
	}
	certs.current.Store(&active{src})
	log.Info("tls certificate ready", "certificate", src.info())
	return certs, nil
}

// TLSConfig returns a new config for routied's http.Server on each call, so the caller may
// change its copy. It allows TLS 1.2 and up, offers h2 then http/1.1, and takes every
// certificate from GetCertificate, also for clients that send no server name.
//
// Leave its Certificates field empty: crypto/tls would serve Certificates[0], which no
// reload or Update replaces, to clients that send no server name, such as those dialing an
// IP address. (httptest.Server.StartTLS adds one there.)
func (c *Certificates) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: c.getCertificate,
	}
}

func (c *Certificates) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load().GetCertificate(hello)
}

// Current describes the certificate being served now.
func (c *Certificates) Current() Info {
	return c.current.Load().info()
}

// Update applies a changed tls config while routied runs: new domains make a new self-signed
// certificate, new cert_file or key_file paths load and watch the new pair, and a new mode
// switches between the two. When the new certificate cannot be had, the current one keeps
// serving and the error says why. A config with the same mode, domains and paths changes
// nothing: new contents of the same files are the watcher's business, not Update's.
//
// ctx bounds only this call.
func (c *Certificates) Update(ctx context.Context, next conf.TLS) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("tls certificates are closed; routied is shutting down")
	}
	if sameSource(c.cfg, next) {
		c.cfg = next
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tls certificate not changed: %w", err)
	}
	src, err := c.open(next)
	if err != nil {
		return fmt.Errorf("%w; still serving the previous certificate", err)
	}
	old := c.current.Swap(&active{src})
	// Close after the swap: handshakes that loaded the old source a moment ago still get its
	// certificate, and only its watcher stops.
	old.close()
	c.cfg = next
	c.log.Info("tls certificate changed", "certificate", src.info())
	return nil
}

// Close stops watching certificate files and returns once the watcher has exited. Handshakes
// still get the last certificate, so Close may run before the listener is shut down.
func (c *Certificates) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.cancel()
	c.current.Load().close()
}

// open makes the source cfg describes.
func (c *Certificates) open(cfg conf.TLS) (source, error) {
	switch cfg.Mode {
	case conf.TLSSelfSigned:
		return openSelfSigned(cfg.Domains, c.stateDir, c.log, c.opts)
	case conf.TLSFiles:
		return openFiles(c.ctx, cfg.CertFile, cfg.KeyFile, c.log, c.opts)
	case conf.TLSOff:
		return nil, fmt.Errorf("%w: there is no certificate to serve", ErrOff)
	default:
		return nil, fmt.Errorf(`tls.mode %q is not a mode; write "self-signed", "files" or "off"`, cfg.Mode)
	}
}

// sameSource reports whether a and b describe the same certificate source. Redirect does not
// matter here, and domains matter only to self-signed certificates.
func sameSource(a, b conf.TLS) bool {
	if a.Mode != b.Mode {
		return false
	}
	switch a.Mode {
	case conf.TLSSelfSigned:
		return slices.Equal(a.Domains, b.Domains)
	case conf.TLSFiles:
		return a.CertFile == b.CertFile && a.KeyFile == b.KeyFile
	}
	return true
}
