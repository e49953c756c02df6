// Package tls turns routied's [conf.TLS] into the *tls.Config of its HTTPS listener:
// certificates from an ACME CA such as Let's Encrypt, obtained and renewed with certmagic; a
// certificate and key from files, reloaded when the files change; or a self-signed
// certificate for local development. Certificates are swapped without dropping connections.
package tls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mholt/acmez/v3"

	"github.com/routie/routie/conf"
)

// ErrOff is what New and Update return, wrapped, for tls.mode "off": there is no certificate
// to serve, and routied runs without its HTTPS listener.
var ErrOff = errors.New(`tls.mode is "off"`)

// ErrNotACME is what Renew returns, wrapped, when the certificates do not come from an ACME
// CA, and ErrUnknownName when the name is not one of tls.domains.
var (
	ErrNotACME     = errors.New("certificates do not come from an ACME CA")
	ErrUnknownName = errors.New("no certificate is managed for that name")
)

// Certificates is the certificate routied's HTTPS listener serves. It is made by New from the
// tls section of the config, changed live by Update, and stopped by Close.
//
// Every handshake reads the current certificate through one atomic load, so Update and a
// reload of changed files replace it without a lock and without touching open connections:
// they keep the certificate they were established with.
type Certificates struct {
	log  *slog.Logger
	host host
	opts options

	// ctx bounds every goroutine a source starts (the files watcher, ACME obtain loops and
	// renewals). It lives as long as the Certificates, not one call: it is New's ctx, and
	// Close cancels it.
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
// certificate at a time; the ACME source picks one per ClientHelloInfo.ServerName.
type source interface {
	// GetCertificate has the contract of tls.Config.GetCertificate. It is called
	// concurrently, on every handshake, and must not block on I/O it can avoid.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// info describes the certificate being served now.
	info() Info
	// status describes the certificate served for each name.
	status() []NameStatus
	// close stops the goroutines the source started and waits until they have exited.
	close()
}

// host is what sources need to know about the routied they serve: where it keeps state
// (conf.State.Dir; self-signed and ACME certificates go below it) and where it listens
// (conf.Listen; ACME challenges are answered there).
type host struct {
	stateDir string
	listen   conf.Listen
}

// options are the knobs tests turn. New uses defaultOptions.
type options struct {
	// debounce is how long the files watcher waits after the last change before it reloads,
	// so a certificate and key replaced one after the other are read as a pair. Default 200ms.
	debounce time.Duration
	// now is the clock for validity checks and for new self-signed certificates.
	// Default time.Now.
	now func() time.Time
	// renewCheck is how often certmagic checks ACME certificates for renewal. Default 0:
	// certmagic's, 10 minutes.
	renewCheck time.Duration
	// obtainRetry is the wait before the next attempt after n failed ones to obtain a first
	// ACME certificate. Default obtainRetry.
	obtainRetry func(err error, n int) time.Duration
}

func defaultOptions() options {
	return options{debounce: 200 * time.Millisecond, now: time.Now, obtainRetry: obtainRetry}
}

// New loads or makes the certificates that cfg.TLS describes. Mode "self-signed" keeps its
// certificate in cfg.State.Dir/tls. Mode "files" also watches the certificate and key files
// and reloads them when they change. Mode "acme" loads stored certificates from
// tls.storage (default cfg.State.Dir/acme) and gets the missing ones in the background,
// answering challenges on cfg.Listen's addresses: New does not wait for the CA. The
// watchers and ACME renewals run until ctx is done or Close is called. log may be nil.
//
// Mode "off" returns an error wrapping ErrOff rather than a nil config, so a listener can
// never start without a certificate: routied checks the mode and skips HTTPS instead.
func New(ctx context.Context, cfg conf.Config, log *slog.Logger) (*Certificates, error) {
	return newCertificates(ctx, cfg.TLS, host{stateDir: cfg.State.Dir, listen: cfg.Listen}, log, defaultOptions())
}

func newCertificates(ctx context.Context, c conf.TLS, h host, log *slog.Logger, o options) (*Certificates, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	certs := &Certificates{log: log, host: h, opts: o, cfg: c}
	certs.ctx, certs.cancel = context.WithCancel(ctx)
	src, err := certs.open(c)
	if err != nil {
		certs.cancel()
		return nil, err
	}
	certs.current.Store(&active{src})
	if _, ok := src.(*acmeSource); !ok { // which logs what it has and what it is getting
		log.Info("tls certificate ready", "certificate", src.info())
	}
	return certs, nil
}

// TLSConfig returns a new config for routied's http.Server on each call, so the caller may
// change its copy. It allows TLS 1.2 and up, offers h2 then http/1.1, and takes every
// certificate from GetCertificate, also for clients that send no server name.
//
// It also offers acme-tls/1, for ACME tls-alpn-01 validation: the CA's handshake offers only
// that protocol, and the ACME source answers it with a challenge certificate. (certmagic's
// own Config.TLSConfig is this GetCertificate and that protocol only.) It is offered in
// every mode because the mode can change to "acme" while the listener runs; browsers never
// offer it, so they get h2 or http/1.1 as before.
//
// Leave its Certificates field empty: crypto/tls would serve Certificates[0], which no
// reload or Update replaces, to clients that send no server name, such as those dialing an
// IP address. (httptest.Server.StartTLS adds one there.)
func (c *Certificates) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1", acmez.ACMETLS1Protocol},
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

// Status describes the certificate served for each name now: for mode "acme", one per
// tls.domains entry, with the last failed attempt to obtain or renew it.
func (c *Certificates) Status() []NameStatus {
	return c.current.Load().status()
}

// HandleHTTPChallenge answers r if it is an ACME http-01 challenge for a certificate being
// obtained, and reports whether it did; routied's plain-HTTP listener calls it before its
// redirect. Outside mode "acme" it answers nothing.
func (c *Certificates) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	a, ok := c.current.Load().source.(*acmeSource)
	return ok && a.HandleHTTPChallenge(w, r)
}

// Renew gets a new ACME certificate for name now, even if the current one is far from its
// expiry, and serves it for new handshakes; open connections keep the old one. It returns
// when the new certificate is served, or with the CA's error, the old one still served. It
// is for an operator checking that renewal works, or replacing a certificate whose key may
// have leaked. Each renewal counts against the CA's rate limits (Let's Encrypt: 5 for the same
// name a week).
func (c *Certificates) Renew(ctx context.Context, name string) error {
	a, ok := c.current.Load().source.(*acmeSource)
	if !ok {
		return fmt.Errorf("%w: tls.mode is %q; only \"acme\" certificates are renewed by routied", ErrNotACME, c.Current().Mode)
	}
	return a.renew(ctx, name)
}

// Update applies a changed tls config while routied runs: new domains make a new self-signed
// certificate, new cert_file or key_file paths load and watch the new pair, new ACME
// settings start managing certificates anew (stored ones are served at once; a name without
// one fails its handshakes until it is obtained), and a new mode switches between them. When
// the new source cannot be opened, the current one keeps serving and the error says why. A
// config with the same mode, domains, paths and ACME settings changes nothing: new contents
// of the same files are the watcher's business, and renewals certmagic's.
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
		return openSelfSigned(cfg.Domains, c.host.stateDir, c.log, c.opts)
	case conf.TLSFiles:
		return openFiles(c.ctx, cfg.CertFile, cfg.KeyFile, c.log, c.opts)
	case conf.TLSACME:
		return openACME(c.ctx, cfg, c.host, c.log, c.opts)
	case conf.TLSOff:
		return nil, fmt.Errorf("%w: there is no certificate to serve", ErrOff)
	default:
		return nil, fmt.Errorf(`tls.mode %q is not a mode; write "acme", "self-signed", "files" or "off"`, cfg.Mode)
	}
}

// sameSource reports whether a and b describe the same certificate source. Redirect and
// HSTS do not matter here, domains matter to self-signed and ACME certificates, and the
// ACME keys only to ACME.
func sameSource(a, b conf.TLS) bool {
	if a.Mode != b.Mode {
		return false
	}
	switch a.Mode {
	case conf.TLSSelfSigned:
		return slices.Equal(a.Domains, b.Domains)
	case conf.TLSFiles:
		return a.CertFile == b.CertFile && a.KeyFile == b.KeyFile
	case conf.TLSACME:
		return slices.Equal(a.Domains, b.Domains) && a.Email == b.Email && a.CA == b.CA &&
			a.CARoot == b.CARoot && a.Storage == b.Storage && slices.Equal(a.Challenges, b.Challenges) &&
			a.EABKeyID == b.EABKeyID && a.EABHMAC == b.EABHMAC
	}
	return true
}
