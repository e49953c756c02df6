package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/routie/routie/conf"
)

func selfSignedConf(domains ...string) conf.TLS {
	return conf.TLS{Mode: conf.TLSSelfSigned, Domains: domains}
}

// storedRoots returns a pool holding the self-signed certificate stored in stateDir, as a
// client told to trust it would have.
func storedRoots(t *testing.T, stateDir string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, "tls", "self-signed.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data) {
		t.Fatal("stored self-signed.crt holds no PEM certificate")
	}
	return roots
}

func TestSelfSignedCertificateIsMadeStoredAndServed(t *testing.T) {
	stateDir := t.TempDir()
	log, _ := newTestLogger(t)
	certs := newTestCertificates(t, selfSignedConf("localhost", "127.0.0.1"), stateDir, log, testOptions())
	addr := serve(t, certs)

	dir := filepath.Join(stateDir, "tls")
	for path, want := range map[string]os.FileMode{
		dir:                                   0o700 | os.ModeDir,
		filepath.Join(dir, "self-signed.key"): 0o600,
		filepath.Join(dir, "self-signed.crt"): 0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}

	roots := storedRoots(t, stateDir)
	c, err := dial(t, addr, roots, "localhost")
	if err != nil {
		t.Fatalf("handshake for localhost with the stored certificate trusted: %v", err)
	}
	get(t, c)
	if _, err := dial(t, addr, roots, ""); err != nil {
		t.Fatalf("handshake for 127.0.0.1 (an IP SAN): %v", err)
	}
	if _, err := dial(t, addr, roots, "example.com"); err == nil {
		t.Fatal("handshake for example.com verified; the certificate is not for it")
	}

	leaf := c.ConnectionState().PeerCertificates[0]
	if leaf.Subject.CommonName != "localhost" {
		t.Errorf("CN = %q, want the first domain, localhost", leaf.Subject.CommonName)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if left := time.Until(leaf.NotAfter); left < 360*24*time.Hour || left > 366*24*time.Hour {
		t.Errorf("valid for %v more, want about a year", left)
	}

	info := certs.Current()
	if info.Mode != conf.TLSSelfSigned || !slices.Equal(info.Names, []string{"localhost", "127.0.0.1"}) ||
		info.Serial != leaf.SerialNumber.Text(16) || !info.NotAfter.Equal(leaf.NotAfter) ||
		info.Subject != info.Issuer || info.CertFile != filepath.Join(dir, "self-signed.crt") {
		t.Errorf("Current() = %+v, does not describe the served certificate", info)
	}
}

func TestSelfSignedCertificateIsReusedOnNextStart(t *testing.T) {
	stateDir := t.TempDir()
	first, err := newCertificates(t.Context(), selfSignedConf("localhost"), host{stateDir: stateDir}, nil, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	log, logs := newTestLogger(t)
	second := newTestCertificates(t, selfSignedConf("localhost"), stateDir, log, testOptions())
	if got, want := second.Current().Serial, first.Current().Serial; got != want {
		t.Errorf("serial after restart = %s, want the stored %s", got, want)
	}
	if logs.contains("making a new self-signed certificate") {
		t.Error("logged making a new certificate, want reuse")
	}
}

func TestSelfSignedStoredCertificate(t *testing.T) {
	later := func(d time.Duration) func() time.Time {
		return func() time.Time { return time.Now().Add(d) }
	}
	tests := []struct {
		name string
		// domains is what the second start is configured with; the first used
		// localhost and 127.0.0.1.
		domains []string
		// now is the second start's clock.
		now func() time.Time
		// spoil changes the stored files between the starts.
		spoil     func(t *testing.T, dir string)
		wantReuse bool
		wantWhy   string
	}{
		{
			name:      "is reused for the same domains in another order",
			domains:   []string{"127.0.0.1", "LOCALHOST"},
			wantReuse: true,
		},
		{
			name:      "is reused with 31 days left",
			domains:   []string{"localhost", "127.0.0.1"},
			now:       later(selfSignedValidity - 31*24*time.Hour),
			wantReuse: true,
		},
		{
			name:    "is replaced when domains are added",
			domains: []string{"localhost", "127.0.0.1", "app.test"},
			wantWhy: "tls.domains is [localhost 127.0.0.1 app.test]",
		},
		{
			name:    "is replaced when a domain is removed",
			domains: []string{"localhost"},
			wantWhy: "stored certificate is for [localhost 127.0.0.1]",
		},
		{
			name:    "is replaced with 29 days left",
			domains: []string{"localhost", "127.0.0.1"},
			now:     later(selfSignedValidity - 29*24*time.Hour),
			wantWhy: "stored certificate expires",
		},
		{
			name:    "is replaced when the certificate file is not PEM",
			domains: []string{"localhost", "127.0.0.1"},
			spoil: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "self-signed.crt"), []byte("garbage"))
			},
			wantWhy: "stored certificate is unusable",
		},
		{
			name:    "is replaced when the key is missing",
			domains: []string{"localhost", "127.0.0.1"},
			spoil: func(t *testing.T, dir string) {
				os.Remove(filepath.Join(dir, "self-signed.key"))
			},
			wantWhy: "no stored certificate",
		},
		{
			name:    "is replaced when the key belongs to another certificate",
			domains: []string{"localhost", "127.0.0.1"},
			spoil: func(t *testing.T, dir string) {
				_, key, err := makeSelfSigned([]string{"localhost"}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "self-signed.key"), key)
			},
			wantWhy: "stored certificate is unusable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stateDir := t.TempDir()
			first, err := newCertificates(t.Context(), selfSignedConf("localhost", "127.0.0.1"), host{stateDir: stateDir}, nil, testOptions())
			if err != nil {
				t.Fatal(err)
			}
			first.Close()
			if tt.spoil != nil {
				tt.spoil(t, filepath.Join(stateDir, "tls"))
			}

			o := testOptions()
			if tt.now != nil {
				o.now = tt.now
			}
			log, logs := newTestLogger(t)
			second := newTestCertificates(t, selfSignedConf(tt.domains...), stateDir, log, o)

			reused := second.Current().Serial == first.Current().Serial
			if reused != tt.wantReuse {
				t.Fatalf("reused = %v, want %v", reused, tt.wantReuse)
			}
			if !tt.wantReuse {
				if !logs.contains(tt.wantWhy) {
					t.Errorf("log does not say why (%q)", tt.wantWhy)
				}
				if !sameNames(second.current.Load().source.(*selfSigned).cert.Leaf, tt.domains) {
					t.Errorf("new certificate is for %v, want %v", second.Current().Names, tt.domains)
				}
				// What was made is what is stored, so the next start reuses it.
				data, err := os.ReadFile(filepath.Join(stateDir, "tls", "self-signed.crt"))
				if err != nil {
					t.Fatal(err)
				}
				block, _ := pem.Decode(data)
				stored, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				if stored.SerialNumber.Text(16) != second.Current().Serial {
					t.Errorf("stored serial %s, served %s", stored.SerialNumber.Text(16), second.Current().Serial)
				}
			}
		})
	}
}

func TestSelfSignedDomainsChangedByUpdateServeANewCertificate(t *testing.T) {
	stateDir := t.TempDir()
	log, logs := newTestLogger(t)
	certs := newTestCertificates(t, selfSignedConf("localhost"), stateDir, log, testOptions())
	addr := serve(t, certs)
	before := certs.Current().Serial
	open, err := dial(t, addr, storedRoots(t, stateDir), "localhost")
	if err != nil {
		t.Fatal(err)
	}

	if err := certs.Update(t.Context(), selfSignedConf("app.test")); err != nil {
		t.Fatalf("Update: %v", err)
	}
	after := certs.Current().Serial
	if after == before {
		t.Fatal("serial unchanged after the domains changed")
	}
	if !logs.contains("stored certificate is for [localhost], tls.domains is [app.test]") {
		t.Error("log does not say why a new certificate was made")
	}
	roots := storedRoots(t, stateDir)
	if _, err := dial(t, addr, roots, "app.test"); err != nil {
		t.Fatalf("handshake for the new domain: %v", err)
	}
	if _, err := dial(t, addr, roots, "localhost"); err == nil {
		t.Fatal("handshake for the removed domain verified")
	}
	get(t, open) // a connection made before the change keeps working

	// The same domains again change nothing.
	if err := certs.Update(t.Context(), selfSignedConf("app.test")); err != nil {
		t.Fatal(err)
	}
	if got := certs.Current().Serial; got != after {
		t.Errorf("serial changed to %s on an Update with the same domains", got)
	}
}

func TestSelfSignedCertificateIsServedWhenStateDirIsNotWritable(t *testing.T) {
	// A regular file where the state directory should be: nothing can be stored under it,
	// as root too.
	stateDir := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(stateDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := newTestLogger(t)
	certs := newTestCertificates(t, selfSignedConf("localhost"), stateDir, log, testOptions())
	if got := servedSerial(t, serve(t, certs)); got != certs.Current().Serial {
		t.Fatalf("served serial %q, want %s", got, certs.Current().Serial)
	}
	if !logs.contains("self-signed certificate not stored") || !logs.contains("make state.dir writable") {
		t.Error("no warning that the certificate was not stored")
	}
}
