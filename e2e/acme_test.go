package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/routie/routie/control"
	"github.com/routie/routie/health"
	"github.com/routie/routie/internal/acmetest"
)

// The tests in this file run routied with real certificates: from Pebble, Let's Encrypt's
// ACME test server, run inside this test process on 127.0.0.1 (tls.mode "acme"), or from
// files the test writes (tls.mode "files"). Pebble validates http-01 challenges on routied's
// plain-HTTP port and tls-alpn-01 challenges on its HTTPS port, and issues for the IP
// identifier 127.0.0.1, so nothing leaves the machine.

// acmeName is the name routied gets certificates for: an IP identifier, which Pebble
// validates on 127.0.0.1 without DNS.
const acmeName = "127.0.0.1"

// startACME starts routied in front of initial with tls.mode "acme", its CA the Pebble p
// (which must validate on d's ports), and waits until it is ready: not until it has a
// certificate. tlsExtra is appended to the [tls] table.
func startACME(t *testing.T, d *daemon, initial int, ca string, challenges []string, tlsExtra string) {
	t.Helper()
	challengeList, _ := json.Marshal(challenges)
	writeTLSConfig(t, d, initial, fmt.Sprintf(`mode = "acme"
domains = [%q]
email = "ops@routie.test"
ca = %q
ca_root = %q
challenges = %s
%s`, acmeName, ca, acmetest.WriteAPIRoot(t, d.dir), challengeList, tlsExtra))
	d.restart(t)
}

// newDaemonPorts returns a daemon not started yet: its directory and ports, so Pebble can be
// told where to validate before routied runs.
func newDaemonPorts(t *testing.T) *daemon {
	t.Helper()
	d := &daemon{dir: shortDir(t), httpPort: freePort(t), httpsPort: freePort(t)}
	d.socket = filepath.Join(d.dir, "c.sock")
	d.config = filepath.Join(d.dir, "routie.toml")
	return d
}

// writeTLSConfig writes d's config with tlsTable as the body of [tls]. It logs at debug, so
// certmagic's steps (challenges answered) are in the log.
func writeTLSConfig(t *testing.T, d *daemon, initial int, tlsTable string) {
	t.Helper()
	testConfig{HTTPPort: d.httpPort, HTTPSPort: d.httpsPort, Initial: initial, TLS: tlsTable, LogLevel: "debug"}.write(t, d.dir)
}

// pebbleFor starts a Pebble that validates challenges on d's listeners.
func pebbleFor(t *testing.T, d *daemon, o acmetest.Options) *acmetest.Server {
	t.Helper()
	o.HTTPPort, o.TLSPort = d.httpPort, d.httpsPort
	return acmetest.Start(t, o)
}

// trusting returns a client that verifies routied's certificate against roots and does not
// follow redirects. h2 offers HTTP/2.
func trusting(roots *x509.CertPool, h2 bool) *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// servedCert returns the certificate a new handshake with d's HTTPS listener gets, verified
// against roots, or nil if the handshake fails.
func servedCert(t *testing.T, d *daemon, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.httpsPort), &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func waitForCert(t *testing.T, d *daemon, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	var cert *x509.Certificate
	eventually(t, "a certificate for "+acmeName+" from Pebble", func() bool {
		cert = servedCert(t, d, roots)
		return cert != nil
	})
	return cert
}

func serial(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

func TestACMEGetsACertificateThroughEachChallengeAndServesTheApp(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			blue := demoApp(t, "blue")
			d := newDaemonPorts(t)
			p := pebbleFor(t, d, acmetest.Options{})
			startACME(t, d, blue, p.Directory, []string{challenge}, "")

			cert := waitForCert(t, d, p.Roots())
			status, app, _ := fetch(t, trusting(p.Roots(), false), d.url("/"))
			if status != http.StatusOK || app != "blue" {
				t.Fatalf("GET / over the ACME certificate: %d from %q, want 200 from blue", status, app)
			}
			d.waitLog(t, `"msg":"tls certificate obtained","name":"127.0.0.1"`)
			if want := `"msg":"served key authentication"`; challenge == "http-01" && !strings.Contains(d.log(), want) {
				t.Errorf("routied's log lacks %s: the http-01 challenge was not answered on its :80 handler", want)
			}
			if want := `"challenge":"tls-alpn-01"`; challenge == "tls-alpn-01" && !strings.Contains(d.log(), want) {
				t.Errorf("routied's log lacks %s", want)
			}

			// routiectl certs: the name, its issuer and expiry, for people and for scripts.
			code, out, errOut := d.ctl(t, "certs")
			expires := cert.NotAfter.Local().Format(time.DateTime)
			if code != 0 || !strings.Contains(out, acmeName) || !strings.Contains(out, cert.Issuer.String()) || !strings.Contains(out, expires) {
				t.Errorf("routiectl certs: exit %d, stderr %q, stdout:\n%s\nwant 0 and %s, %s, %s", code, errOut, out, acmeName, cert.Issuer, expires)
			}
			code, out, _ = d.ctl(t, "certs", "--json")
			var certs control.CertsResponse
			if err := json.Unmarshal([]byte(out), &certs); code != 0 || err != nil {
				t.Fatalf("routiectl certs --json: exit %d, %v:\n%s", code, err, out)
			}
			if len(certs.Certs) != 1 {
				t.Fatalf("routiectl certs --json lists %d certificates, want 1:\n%s", len(certs.Certs), out)
			}
			c := certs.Certs[0]
			if c.Name != acmeName || c.Mode != "acme" || c.Issuer != cert.Issuer.String() || c.Serial != serial(cert) ||
				!c.NotAfter.Equal(cert.NotAfter) || c.DaysLeft == nil || *c.DaysLeft < 89 || c.CA != p.Directory || c.Warning != "" {
				t.Errorf("routiectl certs --json = %+v, want the served certificate %s, valid 90 days, without a warning", c, serial(cert))
			}
			if st := d.status(t); len(st.Certs) != 1 || st.Certs[0].Serial != serial(cert) {
				t.Errorf("status certs = %+v, want the served certificate", st.Certs)
			}
		})
	}
}

func TestPlainHTTPAnswersTheChallengeAndRedirectsEverythingElseKeepingPathAndQuery(t *testing.T) {
	blue := demoApp(t, "blue")
	d := newDaemonPorts(t)
	p := pebbleFor(t, d, acmetest.Options{})
	startACME(t, d, blue, p.Directory, []string{"http-01"}, "")
	waitForCert(t, d, p.Roots()) // http-01 only: Pebble got its answer on routied's plain-HTTP port
	d.waitLog(t, `"msg":"served key authentication"`)

	plain := httpsClient() // does not follow redirects
	for _, path := range []string{
		"/reports/2026?from=a%20b&to=z",
		"/.well-known/acme-challenge/not-a-pending-token", // no pending challenge: redirected
	} {
		resp, err := plain.Get(fmt.Sprintf("http://127.0.0.1:%d%s", d.httpPort, path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := fmt.Sprintf("https://127.0.0.1:%d%s", d.httpsPort, path)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("GET http://…%s = %d Location %q, want 308 to %s", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

func TestForcedRenewalServesANewCertificateWhileOpenConnectionsKeepWorking(t *testing.T) {
	blue := demoApp(t, "blue")
	d := newDaemonPorts(t)
	p := pebbleFor(t, d, acmetest.Options{})
	startACME(t, d, blue, p.Directory, []string{"http-01", "tls-alpn-01"}, "")
	first := waitForCert(t, d, p.Roots())
	addr := fmt.Sprintf("127.0.0.1:%d", d.httpsPort)

	// Three connections made before the renewal: HTTP/1.1 keep-alive, HTTP/2, WebSocket.
	h1, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.Roots(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	h1r := bufio.NewReader(h1)
	getOn(t, h1, h1r, "blue")
	h2 := trusting(p.Roots(), true)
	getH2(t, h2, d.url("/"), false)
	ws := dialWS(t, d, p.Roots())
	echo(t, ws, "before", "blue: before")

	code, out, errOut := d.ctl(t, "certs", "renew", acmeName)
	if code != 0 || !strings.Contains(out, "renewed "+acmeName+": serving certificate ") {
		t.Fatalf("routiectl certs renew: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	renewed := servedCert(t, d, p.Roots())
	if renewed == nil || serial(renewed) == serial(first) {
		t.Fatalf("after the renewal a new handshake gets %v, want a certificate other than %s", renewed, serial(first))
	}
	if !strings.Contains(out, serial(renewed)) {
		t.Errorf("routiectl certs renew says %q, not the served serial %s", out, serial(renewed))
	}

	getOn(t, h1, h1r, "blue")
	if got := h1.ConnectionState().PeerCertificates[0]; serial(got) != serial(first) {
		t.Errorf("the HTTP/1.1 connection now has certificate %s, want it to keep %s", serial(got), serial(first))
	}
	getH2(t, h2, d.url("/"), true)
	echo(t, ws, "after", "blue: after")
	d.waitLog(t, `"msg":"tls certificate renewed"`)
}

func TestACMEServerDownAtStartThenBack(t *testing.T) {
	blue := demoApp(t, "blue")
	d := newDaemonPorts(t)
	caAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens there yet
	startACME(t, d, blue, "https://"+caAddr+"/dir", []string{"http-01"}, "")

	// routied runs without a certificate: plain HTTP redirects, the switch machinery works.
	resp, err := httpsClient().Get(fmt.Sprintf("http://127.0.0.1:%d/app?x=1", d.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("https://127.0.0.1:%d/app?x=1", d.httpsPort); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP with no certificate yet: %d %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	eventually(t, "the active target to be up", func() bool { return d.status(t).Active.Health == health.Up })
	d.waitLog(t, `"msg":"could not obtain a tls certificate; HTTPS for this name fails until one is obtained"`)
	if !strings.Contains(d.log(), "connection refused") {
		t.Error("the logged failure does not say the CA refused the connection")
	}
	code, out, _ := d.ctl(t, "certs")
	if code != 1 || !strings.Contains(out, "none yet") || !strings.Contains(out, "warning: no certificate yet") {
		t.Errorf("routiectl certs with the CA down: exit %d, stdout:\n%s\nwant exit 1, none yet and the warning", code, out)
	}

	p := acmetest.Start(t, acmetest.Options{Addr: caAddr, HTTPPort: d.httpPort, TLSPort: d.httpsPort})
	waitForCert(t, d, p.Roots()) // retried within seconds, not certmagic's minute
	if status, app, _ := fetch(t, trusting(p.Roots(), false), d.url("/")); status != http.StatusOK || app != "blue" {
		t.Errorf("GET / once the certificate is there: %d from %q", status, app)
	}
	if code, out, _ := d.ctl(t, "certs"); code != 0 {
		t.Errorf("routiectl certs once the CA is back: exit %d:\n%s", code, out)
	}
}

func TestStoredCertificateIsServedAfterARestartWithoutANewOrder(t *testing.T) {
	blue := demoApp(t, "blue")
	d := newDaemonPorts(t)
	p := pebbleFor(t, d, acmetest.Options{})
	startACME(t, d, blue, p.Directory, []string{"http-01"}, "")
	first := waitForCert(t, d, p.Roots())
	orders := p.Orders()

	if code := d.stop(t); code != 0 {
		t.Fatalf("routied exited %d on SIGTERM", code)
	}
	d.restart(t)
	// No waiting: the stored certificate is loaded before routied says it is ready.
	if again := servedCert(t, d, p.Roots()); again == nil || serial(again) != serial(first) {
		t.Fatalf("right after the restart routied serves %v, want the stored certificate %s", again, serial(first))
	}
	if got := p.Orders(); got != orders {
		t.Errorf("Pebble got %d new orders after the restart, want none", got-orders)
	}
	d.waitLog(t, `"stored":["127.0.0.1"]`)
}

func TestHTTP2ThroughTheProxyAcrossASwitchWithStreamsAndWebSockets(t *testing.T) {
	blue, green := demoApp(t, "blue"), demoApp(t, "green")
	d := newDaemonPorts(t)
	p := pebbleFor(t, d, acmetest.Options{})
	startACME(t, d, blue, p.Directory, []string{"tls-alpn-01"}, `hsts = "8760h"`)
	waitForCert(t, d, p.Roots())

	h2 := trusting(p.Roots(), true)
	resp := getH2(t, h2, d.url("/"), false)
	if app := resp.Header.Get("X-App"); app != "blue" {
		t.Fatalf("HTTP/2 GET / went to %q, want blue", app)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security = %q, want max-age=31536000 (tls.hsts = 8760h)", got)
	}

	// An event stream over HTTP/2: each event arrives as the app flushes it.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, d.url("/events?n=3&every=50ms"), nil)
	stream, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events, _ := io.ReadAll(stream.Body)
	stream.Body.Close()
	if stream.ProtoMajor != 2 || strings.Count(string(events), "data: blue ") != 3 {
		t.Errorf("event stream over %s: %q, want 3 events from blue over HTTP/2", stream.Proto, events)
	}

	ws := dialWS(t, d, p.Roots())
	echo(t, ws, "hello", "blue: hello")

	if code, out, errOut := d.ctl(t, "switch", strconv.Itoa(green)); code != 0 {
		t.Fatalf("routiectl switch: exit %d\n%s%s", code, out, errOut)
	}
	// The same HTTP/2 connection now reaches green.
	resp = getH2(t, h2, d.url("/"), true)
	if app := resp.Header.Get("X-App"); app != "green" {
		t.Errorf("HTTP/2 GET / after the switch went to %q, want green", app)
	}
	// The WebSocket opened before the switch stays with blue until drain.streams.
	echo(t, ws, "still", "blue: still")

	// Plain HTTP carries no HSTS: browsers ignore it there, and it is a redirect anyway.
	plain, err := httpsClient().Get(fmt.Sprintf("http://127.0.0.1:%d/", d.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if got := plain.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("plain-HTTP answer has Strict-Transport-Security %q", got)
	}
}

func TestFilesModeSwapsTheCertificateLiveAndRefusesAMismatchedPair(t *testing.T) {
	blue := demoApp(t, "blue")
	d := newDaemonPorts(t)
	ca := newFilesCA(t)
	certFile, keyFile := filepath.Join(d.dir, "cert.pem"), filepath.Join(d.dir, "key.pem")
	first := ca.issue(t)
	first.write(t, certFile, keyFile)
	writeTLSConfig(t, d, blue, fmt.Sprintf("mode = \"files\"\ncert_file = %q\nkey_file = %q", certFile, keyFile))
	d.restart(t)
	if got := servedCert(t, d, ca.pool); got == nil || serial(got) != first.serial {
		t.Fatalf("routied serves %v, want the files' certificate %s", got, first.serial)
	}
	open, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.httpsPort), &tls.Config{RootCAs: ca.pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openR := bufio.NewReader(open)

	second := ca.issue(t)
	second.write(t, certFile, keyFile)
	eventually(t, "the replaced files to be served", func() bool {
		c := servedCert(t, d, ca.pool)
		return c != nil && serial(c) == second.serial
	})
	getOn(t, open, openR, "blue") // the connection from before the swap still works

	// A certificate with another pair's key: refused, the second certificate stays.
	third := ca.issue(t)
	os.WriteFile(certFile, third.certPEM, 0o644)
	d.waitLog(t, `"msg":"tls certificate files not reloaded; still serving the previous certificate"`)
	if c := servedCert(t, d, ca.pool); c == nil || serial(c) != second.serial {
		t.Errorf("after a mismatched pair routied serves %v, want %s still", c, second.serial)
	}
	_, out, _ := d.ctl(t, "certs", "--json")
	if !strings.Contains(out, "does not match") {
		t.Errorf("routiectl certs --json does not report the refused pair:\n%s", out)
	}
}

// getOn sends GET / on an HTTP/1.1 connection and checks that app answered.
func getOn(t *testing.T, c net.Conn, r *bufio.Reader, app string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatalf("writing on the open connection: %v", err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading on the open connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-App") != app {
		t.Fatalf("GET / on the open connection: %d from %q, want 200 from %s", resp.StatusCode, resp.Header.Get("X-App"), app)
	}
}

// getH2 GETs url with c and checks it went over HTTP/2, on a reused connection if reused.
func getH2(t *testing.T, c *http.Client, url string, reused bool) *http.Response {
	t.Helper()
	var got httptrace.GotConnInfo
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { got = i }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("HTTP/2 GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d over %s, want 200 over HTTP/2", url, resp.StatusCode, resp.Proto)
	}
	if reused && !got.Reused {
		t.Errorf("GET %s went over a new connection, want the HTTP/2 connection from before", url)
	}
	return resp
}

// dialWS opens a WebSocket to the app through routied. It is an HTTP/1.1 upgrade, as
// browsers make it: routied does not offer WebSockets over HTTP/2.
func dialWS(t *testing.T, d *daemon, roots *x509.CertPool) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}}}
	c, _, err := websocket.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d/ws", d.httpsPort), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("WebSocket through routied: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func echo(t *testing.T, c *websocket.Conn, send, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(send)); err != nil {
		t.Fatalf("WebSocket write: %v", err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != want {
		t.Fatalf("WebSocket echo = %q, %v; want %q", msg, err, want)
	}
}

// filesCA issues certificates for 127.0.0.1, for tls.mode "files".
type filesCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
	next int64
}

type filesPair struct {
	certPEM, keyPEM []byte
	serial          string
}

func newFilesCA(t *testing.T) *filesCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e files CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &filesCA{key: key, cert: cert, pool: pool, next: 100}
}

func (ca *filesCA) issue(t *testing.T) filesPair {
	t.Helper()
	ca.next++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.next), Subject: pkix.Name{CommonName: acmeName},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return filesPair{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		serial:  big.NewInt(ca.next).Text(16),
	}
}

// write replaces the files as certbot does: a new file renamed over each.
func (p filesPair) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for path, data := range map[string][]byte{keyFile: p.keyPEM, certFile: p.certPEM} {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}
