package tls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/conf"
)

func filesConf(certFile, keyFile string) conf.TLS {
	return conf.TLS{Mode: conf.TLSFiles, CertFile: certFile, KeyFile: keyFile}
}

func TestFilesModeServesTheCertificateChain(t *testing.T) {
	ca := newTestCA(t)
	pair := ca.issue(t, "localhost")
	certFile, keyFile := writePair(t, t.TempDir(), pair)
	certs := newTestCertificates(t, filesConf(certFile, keyFile), "", nil, testOptions())
	addr := serve(t, certs)

	c, err := dial(t, addr, ca.pool(), "localhost")
	if err != nil {
		t.Fatalf("handshake with the CA trusted: %v", err)
	}
	get(t, c)
	peers := c.ConnectionState().PeerCertificates
	if len(peers) != 2 || peers[0].SerialNumber.Cmp(pair.leaf.SerialNumber) != 0 || !peers[1].Equal(ca.cert) {
		t.Errorf("server sent %d certificates, want the leaf then the CA", len(peers))
	}
	info := certs.Current()
	if info.Mode != conf.TLSFiles || info.Serial != pair.serial() || info.Issuer != "CN=routie test CA" ||
		info.CertFile != certFile || info.KeyFile != keyFile {
		t.Errorf("Current() = %+v, does not describe the served pair", info)
	}
}

func TestFilesModeAcceptsKeyFormats(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    crypto.Signer
		keyPEM func(pkcs8 []byte) []byte
	}{
		{"PKCS #8 ECDSA", ecKey, func(pkcs8 []byte) []byte { return pemBlock("PRIVATE KEY", pkcs8) }},
		{"SEC 1 ECDSA after EC PARAMETERS, as openssl ecparam writes it", ecKey, func([]byte) []byte {
			return append(pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}),
				pemBlock("EC PRIVATE KEY", sec1)...)
		}},
		{"PKCS #1 RSA", rsaKey, func([]byte) []byte { return pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)) }},
		{"PKCS #8 Ed25519", edKey, func(pkcs8 []byte) []byte { return pemBlock("PRIVATE KEY", pkcs8) }},
	}
	ca := newTestCA(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair := ca.issueFor(t, tt.key, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "localhost")
			pkcs8, err := x509.MarshalPKCS8PrivateKey(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			pair.keyPEM = tt.keyPEM(pkcs8)
			certFile, keyFile := writePair(t, t.TempDir(), pair)
			certs := newTestCertificates(t, filesConf(certFile, keyFile), "", nil, testOptions())
			if _, err := dial(t, serve(t, certs), ca.pool(), "localhost"); err != nil {
				t.Fatalf("handshake: %v", err)
			}
		})
	}
}

func TestFilesModeErrorsNameTheFileAndSayWhatToDo(t *testing.T) {
	ca := newTestCA(t)
	pair := ca.issue(t, "localhost")
	other := ca.issue(t, "localhost")
	tests := []struct {
		name string
		// cert and key are the files' contents; nil leaves the file out.
		cert, key []byte
		// unset leaves tls.cert_file and tls.key_file empty.
		unset bool
		// want are in the error, with {cert} and {key} standing for the files' paths.
		want []string
	}{
		{name: "cert_file and key_file not set", unset: true,
			want: []string{`tls.mode "files" needs tls.cert_file and tls.key_file`}},
		{name: "certificate file missing", key: pair.keyPEM,
			want: []string{`tls.cert_file "{cert}"`, "does not exist", "check the path"}},
		{name: "key file missing", cert: pair.chainPEM,
			want: []string{`tls.key_file "{key}"`, "does not exist"}},
		{name: "certificate file empty", cert: []byte{}, key: pair.keyPEM,
			want: []string{`tls.cert_file "{cert}" is empty`}},
		{name: "certificate file not PEM", cert: []byte("hello\n"), key: pair.keyPEM,
			want: []string{`tls.cert_file "{cert}" is not PEM`, "-----BEGIN CERTIFICATE-----"}},
		{name: "certificate file DER", cert: pair.leaf.Raw, key: pair.keyPEM,
			want: []string{`tls.cert_file "{cert}" is DER, not PEM`, "openssl x509 -inform der -in {cert}"}},
		{name: "key file not PEM", cert: pair.chainPEM, key: []byte("hello\n"),
			want: []string{`tls.key_file "{key}" is not PEM`}},
		{name: "files swapped", cert: pair.keyPEM, key: pair.chainPEM,
			want: []string{`tls.cert_file "{cert}" holds a private key`, "swapped"}},
		{name: "key of another certificate", cert: pair.chainPEM, key: other.keyPEM,
			want: []string{`tls.key_file "{key}" does not match tls.cert_file "{cert}"`, "give the key the certificate was issued for"}},
		{name: "leaf not first in the chain", cert: append(append([]byte(nil), ca.pem...), pair.chainPEM[:len(pair.chainPEM)-len(ca.pem)]...), key: pair.keyPEM,
			want: []string{"certificate 2 of 2", "put the server's own certificate first"}},
		{name: "key encrypted", cert: pair.chainPEM, key: pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}),
			want: []string{`tls.key_file "{key}" is encrypted`, "openssl pkey -in {key}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			if tt.cert != nil {
				writeFile(t, certFile, tt.cert)
			}
			if tt.key != nil {
				writeFile(t, keyFile, tt.key)
			}
			c := filesConf(certFile, keyFile)
			if tt.unset {
				c = filesConf("", "")
			}
			certs, err := newCertificates(t.Context(), c, host{}, nil, testOptions())
			if err == nil {
				certs.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				w = strings.NewReplacer("{cert}", certFile, "{key}", keyFile).Replace(w)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(tt.name, "missing") && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %q is not fs.ErrNotExist", err)
			}
		})
	}
}

func TestFilesModeServesAnExpiredCertificateWithAWarning(t *testing.T) {
	ca := newTestCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	expired := ca.issueFor(t, key, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), "localhost")
	certFile, keyFile := writePair(t, t.TempDir(), expired)
	log, logs := newTestLogger(t)
	certs := newTestCertificates(t, filesConf(certFile, keyFile), "", log, testOptions())

	if got := servedSerial(t, serve(t, certs)); got != expired.serial() {
		t.Fatalf("served serial %q, want the expired certificate's %s", got, expired.serial())
	}
	if !logs.contains("level=WARN") || !logs.contains("tls.cert_file has expired") || !logs.contains(certFile) {
		t.Error("no warning naming the expired file")
	}
}
