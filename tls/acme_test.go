package tls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/internal/acmetest"
)

// acmeRig is an ACME source for 127.0.0.1 behind real listeners, as routied runs it: an
// HTTPS server with Certificates.TLSConfig, and a plain-HTTP server that answers http-01
// challenges through HandleHTTPChallenge. Pebble validates against those listeners.
type acmeRig struct {
	pebble *acmetest.Server
	certs  *Certificates
	conf   conf.TLS
	host   host
	https  string // address of the HTTPS listener
	log    *logBuffer
}

// startACME starts Pebble, the listeners and the ACME source, which starts getting its
// certificate at once. validity 0 is Pebble's default of 90 days.
func startACME(t *testing.T, challenges []string, validity time.Duration, o options) *acmeRig {
	t.Helper()
	httpsLn, httpLn := listen(t), listen(t)
	r := &acmeRig{https: httpsLn.Addr().String()}
	r.pebble = acmetest.Start(t, acmetest.Options{HTTPPort: port(httpLn), TLSPort: port(httpsLn), Validity: validity})
	r.conf = conf.TLS{
		Mode:       conf.TLSACME,
		Domains:    []string{"127.0.0.1"},
		Email:      "ops@routie.test",
		CA:         r.pebble.Directory,
		CARoot:     acmetest.WriteAPIRoot(t, t.TempDir()),
		Challenges: challenges,
	}
	r.host = host{stateDir: t.TempDir(), listen: conf.Listen{HTTP: httpLn.Addr().String(), HTTPS: r.https}}
	var logger = newBufferLogger(t, &r.log)
	certs, err := newCertificates(t.Context(), r.conf, r.host, logger, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(certs.Close)
	r.certs = certs
	serveOn(t, httpsLn, certs.TLSConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	serveOn(t, httpLn, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !certs.HandleHTTPChallenge(w, r) {
			http.Error(w, "not a challenge", http.StatusNotFound)
		}
	}))
	return r
}

// served returns the serial of the certificate a new handshake verified against Pebble's
// roots gets, or "" if the handshake fails (no certificate yet).
func (r *acmeRig) served(t *testing.T) string {
	t.Helper()
	return servedBy(t, r.https, r.pebble.Roots())
}

// servedBy returns the serial of the certificate addr serves, verified against roots for
// the address's IP, or "" if the handshake fails.
func servedBy(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// serveOn serves h on ln until the test ends, with TLS when tlsConfig is not nil.
func serveOn(t *testing.T, ln net.Listener, tlsConfig *tls.Config, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h, TLSConfig: tlsConfig, ErrorLog: log.New(io.Discard, "", 0)}
	served := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
}

// newBufferLogger is newTestLogger that also hands out its buffer.
func newBufferLogger(t *testing.T, buf **logBuffer) *slog.Logger {
	l, b := newTestLogger(t)
	*buf = b
	return l
}

// waitWithin polls cond until it holds, failing the test after d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestACMEObtainsACertificateThroughEachChallenge(t *testing.T) {
	for _, challenge := range []string{conf.ChallengeHTTP01, conf.ChallengeTLSALPN01} {
		t.Run(challenge, func(t *testing.T) {
			r := startACME(t, []string{challenge}, 0, testOptions())
			waitWithin(t, 10*time.Second, "a certificate from Pebble", func() bool { return r.served(t) != "" })
			// certmagic logs each answered challenge; routied logs the certificate.
			if want := "challenge=" + challenge; !r.log.contains(want) {
				t.Errorf("the log does not show the %s challenge answered (%s)", challenge, want)
			}
			if !r.log.contains(`msg="tls certificate obtained" name=127.0.0.1`) {
				t.Error(`the log lacks "tls certificate obtained" for 127.0.0.1`)
			}
			st := r.certs.Status()
			if len(st) != 1 || st[0].Name != "127.0.0.1" || st[0].Issuer == "" || st[0].Serial != r.served(t) ||
				st[0].CA != r.pebble.Directory || st[0].LastError != "" || st[0].Warning(time.Now()) != "" {
				t.Errorf("Status() = %+v, want 127.0.0.1 with the served certificate and no error", st)
			}
		})
	}
}

func TestACMERenewsAShortLivedCertificateWhileAConnectionStaysOpen(t *testing.T) {
	o := testOptions()
	o.renewCheck = 100 * time.Millisecond
	// A 6s certificate: Pebble's renewal window (ARI) spans its whole life, so certmagic
	// renews it at a random moment within those seconds.
	r := startACME(t, []string{conf.ChallengeHTTP01}, 6*time.Second, o)
	waitWithin(t, 10*time.Second, "the first certificate", func() bool { return r.served(t) != "" })

	open, err := (&tls.Dialer{Config: &tls.Config{RootCAs: r.pebble.Roots(), NextProtos: []string{"http/1.1"}}}).DialContext(t.Context(), "tcp", r.https)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	conn := open.(*tls.Conn)
	first := conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
	get(t, conn)

	waitWithin(t, 15*time.Second, "a renewed certificate for new handshakes", func() bool {
		s := r.served(t)
		return s != "" && s != first
	})
	get(t, conn) // the connection made before the renewal still works
	if !r.log.contains(`msg="tls certificate renewed" name=127.0.0.1`) {
		t.Error(`the log lacks "tls certificate renewed"`)
	}
	if st := r.certs.Status(); st[0].Serial == first {
		t.Errorf("Status() still reports the first certificate %s after the renewal", first)
	}
}

func TestACMEServesAStoredCertificateAtOnceWithoutANewOrder(t *testing.T) {
	r := startACME(t, []string{conf.ChallengeHTTP01}, 0, testOptions())
	waitWithin(t, 10*time.Second, "a certificate from Pebble", func() bool { return r.served(t) != "" })
	serial, orders := r.served(t), r.pebble.Orders()
	r.certs.Close()

	// A restart: a new source on the same storage, in front of the same listener.
	again, err := newCertificates(t.Context(), r.conf, r.host, nil, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	ln := listen(t)
	serveOn(t, ln, again.TLSConfig(), http.NotFoundHandler())
	if got := servedBy(t, ln.Addr().String(), r.pebble.Roots()); got != serial {
		t.Fatalf("right after the restart the server serves %q, want the stored certificate %s", got, serial)
	}
	if got := r.pebble.Orders(); got != orders {
		t.Errorf("Pebble got %d new orders after the restart, want none", got-orders)
	}
}

func TestACMERenewGetsANewCertificateNow(t *testing.T) {
	r := startACME(t, []string{conf.ChallengeTLSALPN01}, 0, testOptions())
	waitWithin(t, 10*time.Second, "a certificate from Pebble", func() bool { return r.served(t) != "" })
	first := r.served(t)

	if err := r.certs.Renew(t.Context(), "127.0.0.1"); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if got := r.served(t); got == first || got == "" {
		t.Fatalf("after Renew the server serves %q, want a new certificate (the old one was %s)", got, first)
	}
	if err := r.certs.Renew(t.Context(), "routie.test"); !errors.Is(err, ErrUnknownName) {
		t.Errorf("Renew of a name not in tls.domains: %v, want ErrUnknownName", err)
	}

	selfSigned := newTestCertificates(t, selfSignedConf("localhost"), t.TempDir(), nil, testOptions())
	if err := selfSigned.Renew(t.Context(), "localhost"); !errors.Is(err, ErrNotACME) || !strings.Contains(err.Error(), `tls.mode is "self-signed"`) {
		t.Errorf("Renew in mode self-signed: %v, want ErrNotACME naming the mode", err)
	}
}

func TestACMEKeepsTryingWhileTheCAIsDownAndReportsWhy(t *testing.T) {
	httpsLn, httpLn := listen(t), listen(t)
	caAddr := listen(t) // a port for the CA that is down: nothing accepts on it
	caAddr.Close()
	o := testOptions()
	o.obtainRetry = func(error, int) time.Duration { return 50 * time.Millisecond }
	c := conf.TLS{
		Mode: conf.TLSACME, Domains: []string{"127.0.0.1"}, Email: "ops@routie.test",
		CA:         "https://" + caAddr.Addr().String() + "/dir",
		CARoot:     acmetest.WriteAPIRoot(t, t.TempDir()),
		Challenges: []string{conf.ChallengeHTTP01},
	}
	logger, logs := newTestLogger(t)
	certs, err := newCertificates(t.Context(), c, host{stateDir: t.TempDir(), listen: conf.Listen{HTTP: httpLn.Addr().String(), HTTPS: httpsLn.Addr().String()}}, logger, o)
	if err != nil {
		t.Fatalf("New with the CA down: %v; want it to start and keep trying", err)
	}
	defer certs.Close()
	serveOn(t, httpsLn, certs.TLSConfig(), http.NotFoundHandler())
	serveOn(t, httpLn, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { certs.HandleHTTPChallenge(w, r) }))

	waitWithin(t, 10*time.Second, "a failed attempt in Status", func() bool { return certs.Status()[0].LastError != "" })
	st := certs.Status()[0]
	if !strings.Contains(st.LastError, "connection refused") || st.LastErrorAt.IsZero() || !st.NotAfter.IsZero() {
		t.Errorf("Status() with the CA down = %+v, want the connection error and no certificate", st)
	}
	if w := st.Warning(time.Now()); !strings.HasPrefix(w, "no certificate yet; HTTPS for this name fails until one is obtained") {
		t.Errorf("Warning() = %q", w)
	}
	// certmagic's failure event fills the status a moment before the attempt's log line.
	waitWithin(t, 10*time.Second, "the failed attempt in the log", func() bool { return logs.contains("could not obtain a tls certificate") })

	p := acmetest.Start(t, acmetest.Options{Addr: caAddr.Addr().String(), HTTPPort: port(httpLn), TLSPort: port(httpsLn)})
	r := &acmeRig{pebble: p, https: httpsLn.Addr().String()}
	waitWithin(t, 10*time.Second, "a certificate once the CA is back", func() bool { return r.served(t) != "" })
	if st := certs.Status()[0]; st.LastError != "" || st.Serial == "" || !st.NextAttempt.IsZero() {
		t.Errorf("Status() after the CA came back = %+v, want the certificate and no error", st)
	}
}

func TestUpdateToACMEAndBackStopsTheACMESource(t *testing.T) {
	r := startACME(t, []string{conf.ChallengeHTTP01}, 0, testOptions())
	waitWithin(t, 10*time.Second, "a certificate from Pebble", func() bool { return r.served(t) != "" })
	a := r.certs.current.Load().source.(*acmeSource)

	if err := r.certs.Update(t.Context(), selfSignedConf("127.0.0.1")); err != nil {
		t.Fatalf("Update to self-signed: %v", err)
	}
	if r.served(t) != "" {
		t.Error("after Update to self-signed, a client trusting only Pebble still verifies the served certificate")
	}
	stopped := make(chan struct{})
	go func() { a.done.Wait(); close(stopped) }()
	if !closedWithin(stopped, 5*time.Second) {
		t.Error("the ACME source's goroutines still run after Update")
	}

	if err := r.certs.Update(t.Context(), r.conf); err != nil {
		t.Fatalf("Update back to acme: %v", err)
	}
	if r.served(t) == "" {
		t.Error("after Update back to acme, the stored ACME certificate is not served at once")
	}
}

func TestACMEStartRefusesWhatNoRetryCanFix(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "root.txt")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644)
	aFile := filepath.Join(dir, "file")
	os.WriteFile(aFile, nil, 0o644)
	good := conf.TLS{Mode: conf.TLSACME, Domains: []string{"routie.test"}, Email: "ops@routie.test", CA: conf.LetsEncryptStaging,
		Challenges: []string{conf.ChallengeHTTP01}}

	tests := []struct {
		name   string
		change func(*conf.TLS)
		want   string
	}{
		{"no email", func(c *conf.TLS) { c.Email = "" }, `tls.mode "acme" needs tls.email`},
		{"no domains", func(c *conf.TLS) { c.Domains = nil }, "tls.domains is empty"},
		{"missing ca_root", func(c *conf.TLS) { c.CARoot = filepath.Join(dir, "missing.pem") }, `tls.ca_root "` + filepath.Join(dir, "missing.pem") + `": file does not exist`},
		{"ca_root that is not PEM", func(c *conf.TLS) { c.CARoot = notPEM }, "holds no PEM certificate"},
		{"storage under a file", func(c *conf.TLS) { c.Storage = filepath.Join(aFile, "acme") }, "tls.storage " + filepath.Join(aFile, "acme")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			_, err := newCertificates(t.Context(), c, host{stateDir: t.TempDir()}, nil, testOptions())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestObtainRetriesSoonWhenTheCAIsUnreachableAndBacksOffWhenItRefuses(t *testing.T) {
	unreachable := errors.New("dial tcp 127.0.0.1:14000: connect: connection refused")
	refused := fmt.Errorf("[example.com] Obtain: %w", acme.Problem{Type: "urn:ietf:params:acme:error:unauthorized", Status: 403})
	tests := []struct {
		err  error
		n    int
		want time.Duration
	}{
		{unreachable, 1, time.Second},
		{unreachable, 2, 2 * time.Second},
		{unreachable, 6, 32 * time.Second},
		{unreachable, 7, time.Minute},
		{unreachable, 100, time.Minute},
		{refused, 1, time.Minute},
		{refused, 3, 5 * time.Minute},
		{refused, 7, time.Hour},
		{refused, 100, time.Hour},
	}
	for _, tt := range tests {
		if got := obtainRetry(tt.err, tt.n); got != tt.want {
			t.Errorf("obtainRetry(%v, %d) = %s, want %s", tt.err, tt.n, got, tt.want)
		}
	}
}

func TestACMEReplacesAStoredCertificateWhoseKeyIsDamaged(t *testing.T) {
	r := startACME(t, []string{conf.ChallengeHTTP01}, 0, testOptions())
	waitWithin(t, 10*time.Second, "a certificate from Pebble", func() bool { return r.served(t) != "" })
	first := r.served(t)
	// Stop the ACME source (as a restart would), damage its stored key, start it again.
	if err := r.certs.Update(t.Context(), selfSignedConf("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	keys, _ := filepath.Glob(filepath.Join(r.host.stateDir, "acme", "certificates", "*", "127.0.0.1", "*.key"))
	if len(keys) != 1 {
		t.Fatalf("stored keys: %q, want one", keys)
	}
	if err := os.WriteFile(keys[0], []byte("-----BEGIN EC PRIVATE KEY-----\ntruncated\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := r.certs.Update(t.Context(), r.conf); err != nil {
		t.Fatalf("Update back to acme with a damaged stored key: %v", err)
	}
	waitWithin(t, 10*time.Second, "a new certificate in place of the damaged one", func() bool {
		s := r.served(t)
		return s != "" && s != first
	})
	if !r.log.contains("stored certificate is unusable; getting a new one") {
		t.Error("the damaged certificate is not logged")
	}
}
