// Package acmetest runs Pebble, Let's Encrypt's ACME test server, inside a test process, so
// that tests get real certificates through real challenges on 127.0.0.1 without reaching the
// internet. Only tests import it; it is never linked into routied.
package acmetest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// Options configure a Server. Zero values are Pebble's defaults.
type Options struct {
	// Addr is where the ACME API listens, such as "127.0.0.1:14000". Default: a free port on
	// 127.0.0.1. Give an address to start a server where a client already expects one.
	Addr string
	// HTTPPort is the port on the identifier's address where Pebble validates http-01
	// challenges: the port of routied's listen.http. Default 80.
	HTTPPort int
	// TLSPort is where Pebble validates tls-alpn-01 challenges: the port of routied's
	// listen.https. Default 443.
	TLSPort int
	// Validity is how long issued certificates are valid, in whole seconds. Default 90 days.
	Validity time.Duration
}

// Server is a running Pebble. Its issuing roots are new for every Server.
type Server struct {
	// Directory is the ACME directory URL: tls.ca.
	Directory string

	srv    *httptest.Server
	ca     *ca.CAImpl
	orders atomic.Int64
	logs   *lockedBuffer
}

// Start runs a Pebble until the test ends, validating challenges as o says. Pebble does not
// sleep before validating and accepts every nonce, so issuance takes milliseconds.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	setEnv.Do(func() {
		// Pebble reads these in va.New and wfe.New. Without them it sleeps up to 15s before
		// each validation and rejects 5% of good nonces on purpose.
		os.Setenv("PEBBLE_VA_NOSLEEP", "1")
		os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	})
	if o.HTTPPort == 0 {
		o.HTTPPort = 80
	}
	if o.TLSPort == 0 {
		o.TLSPort = 443
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("acmetest: listening for the ACME API on %s: %v", addr, err)
	}

	s := &Server{logs: &lockedBuffer{}}
	logger := log.New(s.logs, "pebble ", log.Ltime|log.Lmicroseconds)
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "acmetest", ValidityPeriod: uint64(o.Validity / time.Second)}}
	s.ca = ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	validator := va.New(logger, o.HTTPPort, o.TLSPort, false, "", store)
	front := wfe.New(logger, store, validator, s.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	api := front.Handler()

	s.srv = &httptest.Server{
		Listener: ln,
		Config: &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
					s.orders.Add(1)
				}
				api.ServeHTTP(w, r)
			}),
			ErrorLog: log.New(io.Discard, "", 0),
		},
		TLS: &tls.Config{Certificates: []tls.Certificate{apiCert()}},
	}
	s.srv.StartTLS()
	s.Directory = s.srv.URL + wfe.DirectoryPath
	t.Cleanup(func() {
		s.srv.Close()
		if t.Failed() {
			t.Logf("pebble log:\n%s", s.logs)
		}
	})
	return s
}

// Roots returns Pebble's issuing root, which a client trusts to verify issued certificates.
func (s *Server) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.GetRootCert(0).Cert)
	return pool
}

// Orders is the number of new orders clients have placed.
func (s *Server) Orders() int64 { return s.orders.Load() }

// WriteAPIRoot writes the PEM root that signs every Server's API certificate into dir and
// returns its path: what tls.ca_root names. It is the same for every Server in the process,
// so a client can be given it before the Server starts.
func WriteAPIRoot(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "acme-api-root.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: apiRootDER()})
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	setEnv sync.Once

	apiOnce sync.Once
	apiRoot []byte          // DER
	apiLeaf tls.Certificate // for 127.0.0.1 and localhost, signed by apiRoot
)

func apiRootDER() []byte { makeAPICerts(); return apiRoot }
func apiCert() tls.Certificate {
	makeAPICerts()
	return apiLeaf
}

// makeAPICerts makes the root and leaf of the ACME API's HTTPS once per process.
func makeAPICerts() {
	apiOnce.Do(func() {
		rootKey := mustKey()
		root := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "acmetest API root"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
		if err != nil {
			panic(err)
		}
		rootCert, _ := x509.ParseCertificate(rootDER)
		leafKey := mustKey()
		leaf := &x509.Certificate{
			SerialNumber: big.NewInt(2),
			Subject:      pkix.Name{CommonName: "acmetest API"},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		leafDER, err := x509.CreateCertificate(rand.Reader, leaf, rootCert, &leafKey.PublicKey, rootKey)
		if err != nil {
			panic(err)
		}
		apiRoot = rootDER
		apiLeaf = tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
	})
}

func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// lockedBuffer collects Pebble's log, written from its validation goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
