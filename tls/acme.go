package tls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"

	"github.com/routie/routie/conf"
)

// acmeSource gets a certificate for each of tls.domains from an ACME CA and renews it, with
// certmagic. Challenges are answered by routied's own listeners: http-01 by the plain-HTTP
// handler through HandleHTTPChallenge, tls-alpn-01 by GetCertificate during the handshake.
//
// Who does what: this source obtains each name's first certificate (obtain, with a retry
// schedule of its own) and loads stored ones at start; certmagic's cache then renews them in
// the background and swaps renewed certificates in for new handshakes. Connections keep the
// certificate they were established with.
type acmeSource struct {
	magic   *certmagic.Config
	cache   *certmagic.Cache
	issuer  *certmagic.ACMEIssuer
	domains []string
	ca      string
	log     *slog.Logger

	// stop ends the goroutines in done: one obtain loop per name that had no stored
	// certificate, and the first renewal check of stored ones.
	stop context.CancelFunc
	done sync.WaitGroup

	mu    sync.Mutex // guards names
	names map[string]*nameState
}

// nameState is what status reports beyond the certificate itself.
type nameState struct {
	lastError   string
	lastErrorAt time.Time
	nextAttempt time.Time
}

// openACME loads the certificates c.Domains have in storage, so a restart serves them at
// once without asking the CA, and starts getting the others in the background. It fails only
// for what no retry can fix: a ca_root that does not load, a storage directory that cannot
// be made, a key the config must have.
func openACME(ctx context.Context, c conf.TLS, h host, log *slog.Logger, o options) (*acmeSource, error) {
	if c.Email == "" {
		// certmagic would otherwise ask for one on stdin.
		return nil, errors.New(`tls.mode "acme" needs tls.email, the ACME account's contact address; set it, e.g. email = "ops@your-domain.com"`)
	}
	if len(c.Domains) == 0 {
		return nil, errors.New(`tls.domains is empty; list the names to get certificates for, e.g. domains = ["your-domain.com"]`)
	}
	var roots *x509.CertPool
	if c.CARoot != "" {
		var err error
		if roots, err = loadRoots(c.CARoot); err != nil {
			return nil, err
		}
	}
	storage := c.Storage
	if storage == "" {
		if h.stateDir == "" {
			return nil, errors.New(`tls.storage and state.dir are both empty; routied keeps ACME accounts and certificates there, e.g. dir = "/var/lib/routie"`)
		}
		storage = filepath.Join(h.stateDir, "acme")
	}
	if err := os.MkdirAll(storage, 0o700); err != nil {
		return nil, fmt.Errorf("tls.storage %s: %w; create it, writable by the user routied runs as, or point tls.storage elsewhere", storage, err)
	}

	zl := zapLogger(log)
	a := &acmeSource{domains: slices.Clone(c.Domains), ca: c.CA, log: log, names: map[string]*nameState{}}
	for _, name := range a.domains {
		a.names[name] = &nameState{}
	}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		// One config manages every certificate of this cache. The maintenance goroutine
		// reads a.magic only for cached certificates, and a.magic is set before the first
		// one is cached.
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		RenewCheckInterval: o.renewCheck,
		Logger:             zl.Named("cache"),
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		// Renewal starts when a third of the lifetime is left (30 of Let's Encrypt's 90
		// days), or earlier if the CA's renewal info (ARI) says so.
		OnEvent:        a.onEvent,
		ShouldEmitFunc: func(event string) bool { return slices.Contains(loggedEvents, event) },
		// Clients that send no server name (old ones, or dialing an IP address this
		// source has no certificate for) get the first name's certificate.
		DefaultServerName: a.domains[0],
		Storage:           &certmagic.FileStorage{Path: storage},
		Logger:            zl,
	})

	httpHost, httpPort := splitListen(h.listen.HTTP)
	_, httpsPort := splitListen(h.listen.HTTPS)
	template := certmagic.ACMEIssuer{
		CA:     c.CA,
		Email:  c.Email,
		Agreed: true, // the operator agrees to the CA's terms by configuring it; never prompt
		// The solvers must not start listeners of their own: routied already holds these
		// addresses and answers challenges on them. Pointing the solvers at them makes
		// certmagic find them taken and rely on routied's handlers.
		ListenHost:              httpHost,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          httpsPort,
		DisableHTTPChallenge:    !slices.Contains(c.Challenges, conf.ChallengeHTTP01),
		DisableTLSALPNChallenge: !slices.Contains(c.Challenges, conf.ChallengeTLSALPN01),
		TrustedRoots:            roots,
		Logger:                  zl.Named("acme"),
	}
	if c.EABKeyID != "" {
		template.ExternalAccount = &acme.EAB{KeyID: c.EABKeyID, MACKey: strings.TrimRight(c.EABHMAC, "=")}
	}
	a.issuer = certmagic.NewACMEIssuer(a.magic, template)
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	a.warnAboutPorts(c.Challenges, httpPort, httpsPort)

	// Stored certificates are read from disk before the first handshake; only names without
	// one wait for the CA.
	missing, stored := []string{}, []string{} // logged as [], not null
	unusable := map[string]bool{}
	for _, name := range a.domains {
		_, err := a.magic.CacheManagedCertificate(ctx, name)
		switch {
		case err == nil:
			stored = append(stored, name)
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, name)
		default:
			log.Warn("stored certificate is unusable; getting a new one", "name", name, "storage", storage, "err", err)
			missing = append(missing, name)
			unusable[name] = true
		}
	}
	log.Info("tls certificates managed with ACME", "ca", c.CA, "names", a.domains, "stored", stored,
		"to_obtain", missing, "challenges", c.Challenges, "storage", storage)

	ctx, a.stop = context.WithCancel(ctx)
	if len(stored) > 0 {
		// certmagic checks for renewal every RenewCheckInterval (10 minutes); check the
		// stored certificates now, so one that expired while routied was down is renewed
		// at once. Renewals run in certmagic's background jobs.
		a.done.Go(func() {
			if err := a.cache.RenewManagedCertificates(ctx); err != nil {
				log.Error("checking stored certificates for renewal", "err", err)
			}
		})
	}
	for _, name := range missing {
		a.done.Go(func() { a.obtain(ctx, name, unusable[name], o.obtainRetry) })
	}
	return a, nil
}

// loggedEvents are the certmagic events onEvent handles. Others are not even emitted:
// tls_get_certificate would build a map on every handshake.
var loggedEvents = []string{"cert_obtaining", "cert_obtained", "cert_failed"}

// obtain gets the first certificate for name, trying until it succeeds or ctx ends; retry
// says how long to wait after each failure. replace says storage holds files for name that
// do not make a certificate (a key that does not match, a truncated file): they are replaced
// rather than loaded again. Once it succeeds, the certificate is cached and managed, and
// certmagic renews it.
func (a *acmeSource) obtain(ctx context.Context, name string, replace bool, retry func(error, int) time.Duration) {
	var attempts int
	for {
		// certmagic's issuer reads the number of failed attempts: from the second on, it
		// validates against Let's Encrypt's staging CA first and only orders from
		// production once that passes, so failures do not use up production rate limits.
		actx := context.WithValue(ctx, certmagic.AttemptsCtxKey, &attempts)
		var err error
		if replace {
			// ManageSync would fail to load them on every attempt; a forced renewal
			// writes a new certificate and key over them.
			if err = a.magic.RenewCertSync(actx, name, true); err == nil {
				_, err = a.magic.CacheManagedCertificate(ctx, name)
			}
		} else {
			err = a.magic.ManageSync(actx, []string{name})
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		attempts++
		wait := retry(err, attempts)
		a.setFailed(name, err, time.Now().Add(wait))
		a.log.Error("could not obtain a tls certificate; HTTPS for this name fails until one is obtained",
			"name", name, "ca", a.ca, "attempt", attempts, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// obtainRetry is the wait before attempt n+1 to obtain a certificate. When the CA answered
// with a problem (a failed validation, a rate limit), it backs off over minutes up to an
// hour, as certmagic does, to stay within the CA's limits. When the CA was not reached at
// all (the network not up yet at boot, an outage), it tries again within seconds, up to a
// minute apart: those attempts cost the CA one request and count against no limit.
func obtainRetry(err error, n int) time.Duration {
	var problem acme.Problem
	if errors.As(err, &problem) {
		return caRefusedRetries[min(n, len(caRefusedRetries))-1]
	}
	return min(time.Second<<min(n-1, 6), time.Minute)
}

var caRefusedRetries = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Hour,
}

// onEvent logs certmagic's certificate events and keeps the last error for status. It runs
// synchronously inside certmagic, so it only logs and records.
func (a *acmeSource) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtaining":
		if renewal {
			a.log.Info("renewing tls certificate", "name", name, "remaining", data["remaining"], "forced", data["forced"])
		} else {
			a.log.Info("obtaining tls certificate", "name", name, "ca", a.ca)
		}
	case "cert_obtained":
		a.setObtained(name)
		msg := "tls certificate obtained"
		if renewal {
			msg = "tls certificate renewed"
		}
		a.log.Info(msg, "name", name, "ca", a.ca)
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		a.setFailed(name, err, time.Time{})
		// A failed first attempt is logged by obtain, with when it tries again.
		if renewal {
			a.log.Error("tls certificate renewal failed; still serving the current certificate, and retrying",
				"name", name, "remaining", data["remaining"], "err", err)
		}
	}
	return nil
}

func (a *acmeSource) setFailed(name string, err error, next time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.names[name]; ok {
		s.lastError, s.lastErrorAt = err.Error(), time.Now()
		if !next.IsZero() {
			s.nextAttempt = next
		}
	}
}

func (a *acmeSource) setObtained(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.names[name]; ok {
		*s = nameState{}
	}
}

// GetCertificate serves the certificate for the ClientHello's server name, and answers
// tls-alpn-01 challenges (hellos that offer only the acme-tls/1 protocol).
func (a *acmeSource) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.magic.GetCertificate(hello)
}

// HandleHTTPChallenge answers an ACME http-01 challenge request for one of this source's
// pending orders and reports whether it did. certmagic answers only when the Host header is
// the name being validated.
func (a *acmeSource) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return a.issuer.HandleHTTPChallenge(w, r)
}

// renew gets a new certificate for name now, whether or not the current one is due, and
// serves it for new handshakes.
func (a *acmeSource) renew(ctx context.Context, name string) error {
	if !slices.Contains(a.domains, name) {
		return fmt.Errorf("%w: %q is not in tls.domains %q", ErrUnknownName, name, a.domains)
	}
	if err := a.magic.RenewCertSync(ctx, name, true); err != nil {
		a.setFailed(name, err, time.Time{})
		return err
	}
	// RenewCertSync leaves the cache alone: load the new certificate, then drop the old
	// one. In between both are valid, and a handshake may get either.
	previous := a.cache.AllMatchingCertificates(name)
	fresh, err := a.magic.CacheManagedCertificate(ctx, name)
	if err != nil {
		return fmt.Errorf("renewed the certificate for %s but could not load it from storage: %w", name, err)
	}
	var stale []string
	for _, c := range previous {
		if c.Hash() != fresh.Hash() && slices.Contains(c.Names, name) {
			stale = append(stale, c.Hash())
		}
	}
	a.cache.Remove(stale)
	return nil
}

func (a *acmeSource) info() Info {
	return Info{Mode: conf.TLSACME, Names: slices.Clone(a.domains), CA: a.ca}
}

func (a *acmeSource) status() []NameStatus {
	out := make([]NameStatus, 0, len(a.domains))
	for _, name := range a.domains {
		s := NameStatus{Name: name, Mode: conf.TLSACME, CA: a.ca}
		// The newest certificate for the name is the one a renewal just brought in.
		for _, c := range a.cache.AllMatchingCertificates(name) {
			if c.Leaf != nil && c.Leaf.NotAfter.After(s.NotAfter) {
				s.setLeaf(c.Leaf)
			}
		}
		a.mu.Lock()
		st := a.names[name]
		s.LastError, s.LastErrorAt = st.lastError, st.lastErrorAt
		if s.NotAfter.IsZero() && st.nextAttempt.After(time.Now()) {
			s.NextAttempt = st.nextAttempt
		}
		a.mu.Unlock()
		out = append(out, s)
	}
	return out
}

func (a *acmeSource) close() {
	a.stop()
	a.done.Wait()
	a.cache.Stop()
}

// warnAboutPorts warns when a challenge is answered on a port the CA does not use: a CA
// validates http-01 on port 80 and tls-alpn-01 on 443, so another port only works behind a
// forward from those.
func (a *acmeSource) warnAboutPorts(challenges []string, httpPort, httpsPort int) {
	if slices.Contains(challenges, conf.ChallengeHTTP01) && httpPort != 80 {
		a.log.Warn("tls.challenges has http-01, which CAs validate on port 80, but listen.http is on another port; forward port 80 to it, or list only tls-alpn-01",
			"listen_http_port", httpPort)
	}
	if slices.Contains(challenges, conf.ChallengeTLSALPN01) && httpsPort != 443 {
		a.log.Warn("tls.challenges has tls-alpn-01, which CAs validate on port 443, but listen.https is on another port; forward port 443 to it, or list only http-01",
			"listen_https_port", httpsPort)
	}
}

// splitListen returns the host and port of a listen address ("" and 0 for one that is off).
func splitListen(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// loadRoots reads tls.ca_root: the PEM roots to trust for the ACME server's HTTPS.
func loadRoots(path string) (*x509.CertPool, error) {
	data, err := readFile("tls.ca_root", path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tls.ca_root %q holds no PEM certificate; give the root certificate of your ACME CA (step-ca: certs/root_ca.crt)", path)
	}
	return pool, nil
}
