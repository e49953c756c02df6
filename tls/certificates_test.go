package tls

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/conf"
)

func TestHTTP2IsNegotiatedWithClientsThatOfferIt(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := writePair(t, t.TempDir(), ca.issue(t, "localhost"))
	certs := newTestCertificates(t, filesConf(certFile, keyFile), "", nil, testOptions())
	addr := serve(t, certs)

	tests := []struct {
		name   string
		offers []string
		want   string
	}{
		{"h2 and http/1.1", []string{"h2", "http/1.1"}, "h2"},
		{"http/1.1 only", []string{"http/1.1"}, "http/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &tls.Dialer{Config: &tls.Config{RootCAs: ca.pool(), ServerName: "localhost", NextProtos: tt.offers}}
			c, err := d.DialContext(t.Context(), "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != tt.want {
				t.Errorf("negotiated %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("an HTTP/2 request is served", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + strings.Replace(addr, "127.0.0.1", "localhost", 1))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.ProtoMajor != 2 || string(body) != "HTTP/2.0" {
			t.Errorf("response over %s said %q, want HTTP/2.0", resp.Proto, body)
		}
	})
}

func TestClientsBelowTLS12AreRefused(t *testing.T) {
	certs := newTestCertificates(t, selfSignedConf("localhost"), t.TempDir(), nil, testOptions())
	addr := serve(t, certs)
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

func TestModeOffIsRefusedWithErrOff(t *testing.T) {
	_, err := New(t.Context(), conf.Config{TLS: conf.TLS{Mode: conf.TLSOff}, State: conf.State{Dir: t.TempDir()}}, nil)
	if !errors.Is(err, ErrOff) {
		t.Fatalf("New(mode off) error = %v, want ErrOff", err)
	}
}

func TestUnknownModeIsRefusedWithTheModesToWrite(t *testing.T) {
	_, err := New(t.Context(), conf.Config{TLS: conf.TLS{Mode: "letsencrypt"}, State: conf.State{Dir: t.TempDir()}}, nil)
	if err == nil || !strings.Contains(err.Error(), `tls.mode "letsencrypt" is not a mode; write "acme", "self-signed", "files" or "off"`) {
		t.Fatalf("New(mode letsencrypt) error = %v", err)
	}
}

func TestUpdateThatFailsKeepsServingTheCurrentCertificate(t *testing.T) {
	stateDir := t.TempDir()
	certs := newTestCertificates(t, selfSignedConf("localhost"), stateDir, nil, testOptions())
	addr := serve(t, certs)
	before := certs.Current().Serial
	missing := filepath.Join(t.TempDir(), "missing.pem")

	tests := []struct {
		name string
		conf conf.TLS
		want string
	}{
		{"files that do not exist", filesConf(missing, missing), missing},
		{"mode off", conf.TLS{Mode: conf.TLSOff}, `tls.mode is "off"`},
		{"no domains", selfSignedConf(), "tls.domains is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := certs.Update(t.Context(), tt.conf)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "still serving the previous certificate") {
				t.Fatalf("Update error = %v, want one containing %q", err, tt.want)
			}
			if got := certs.Current().Serial; got != before {
				t.Errorf("Current().Serial = %s, want the old %s", got, before)
			}
			if _, err := dial(t, addr, storedRoots(t, stateDir), "localhost"); err != nil {
				t.Errorf("handshake with the old certificate: %v", err)
			}
		})
	}
	if err := certs.Update(t.Context(), conf.TLS{Mode: conf.TLSOff}); !errors.Is(err, ErrOff) {
		t.Errorf("Update(mode off) error = %v, want ErrOff", err)
	}
}

func TestUpdateSwitchesBetweenSelfSignedAndFiles(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	pair := ca.issue(t, "localhost")
	certFile, keyFile := writePair(t, dir, pair)
	stateDir := t.TempDir()
	log, _ := newTestLogger(t)
	certs := newTestCertificates(t, selfSignedConf("localhost"), stateDir, log, testOptions())
	addr := serve(t, certs)
	open, err := dial(t, addr, storedRoots(t, stateDir), "localhost")
	if err != nil {
		t.Fatal(err)
	}

	if err := certs.Update(t.Context(), filesConf(certFile, keyFile)); err != nil {
		t.Fatalf("Update to files: %v", err)
	}
	if _, err := dial(t, addr, ca.pool(), "localhost"); err != nil {
		t.Fatalf("handshake with the files' certificate: %v", err)
	}
	get(t, open)
	watched := certs.current.Load().source.(*files)

	// New paths: the new pair is watched, the old watcher stops.
	otherDir := t.TempDir()
	otherCert, otherKey := writePair(t, otherDir, ca.issue(t, "localhost"))
	if err := certs.Update(t.Context(), filesConf(otherCert, otherKey)); err != nil {
		t.Fatalf("Update to other files: %v", err)
	}
	if !closedWithin(watched.done, 0) {
		t.Error("the old files' watcher still runs after Update")
	}
	renewed := ca.issue(t, "localhost")
	writePair(t, otherDir, renewed)
	waitFor(t, "the new files to be watched", func() bool { return servedSerial(t, addr) == renewed.serial() })

	if err := certs.Update(t.Context(), selfSignedConf("localhost")); err != nil {
		t.Fatalf("Update back to self-signed: %v", err)
	}
	if _, err := dial(t, addr, storedRoots(t, stateDir), "localhost"); err != nil {
		t.Fatalf("handshake with the self-signed certificate: %v", err)
	}
}

func TestUpdateAfterCloseIsRefused(t *testing.T) {
	certs := newTestCertificates(t, selfSignedConf("localhost"), t.TempDir(), nil, testOptions())
	certs.Close()
	if err := certs.Update(t.Context(), selfSignedConf("app.test")); err == nil {
		t.Fatal("Update after Close succeeded")
	}
}
