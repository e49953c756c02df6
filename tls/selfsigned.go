package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/routie/routie/conf"

	"github.com/routie/routie/internal/atomicfile"
)

const (
	// selfSignedValidity is how long a new self-signed certificate is valid.
	selfSignedValidity = 365 * 24 * time.Hour
	// selfSignedRenewBefore: a stored certificate with less left than this is replaced at
	// start, so a daemon started on its last day does not serve an expired one the next.
	selfSignedRenewBefore = 30 * 24 * time.Hour
)

// selfSigned serves one certificate made for the configured domains and kept in the state
// directory, so clients told to trust it keep trusting it across restarts.
type selfSigned struct {
	cert              *tls.Certificate
	certFile, keyFile string
}

func (s *selfSigned) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert, nil
}

func (s *selfSigned) info() Info {
	return infoOf(conf.TLSSelfSigned, s.cert.Leaf, s.certFile, s.keyFile)
}

func (s *selfSigned) status() []NameStatus {
	return statusOf(conf.TLSSelfSigned, s.cert.Leaf, "", time.Time{})
}

func (s *selfSigned) close() {}

// openSelfSigned reuses the certificate stored in stateDir/tls when it is for exactly these
// domains and valid for more than selfSignedRenewBefore, and otherwise makes and stores a
// new one. A certificate that cannot be stored is still served, with a warning.
func openSelfSigned(domains []string, stateDir string, log *slog.Logger, o options) (*selfSigned, error) {
	if len(domains) == 0 {
		return nil, errors.New(`tls.domains is empty; list the names the self-signed certificate is for, e.g. domains = ["localhost"]`)
	}
	if stateDir == "" {
		return nil, errors.New(`state.dir is empty; routied keeps its self-signed certificate there, e.g. dir = "/var/lib/routie"`)
	}
	dir := filepath.Join(stateDir, "tls")
	s := &selfSigned{
		certFile: filepath.Join(dir, "self-signed.crt"),
		keyFile:  filepath.Join(dir, "self-signed.key"),
	}

	now := o.now()
	stored, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err == nil {
		err = parseLeaf(&stored)
	}
	var why string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		why = "no stored certificate"
	case err != nil:
		why = fmt.Sprintf("stored certificate is unusable: %v", err)
	case !sameNames(stored.Leaf, domains):
		why = fmt.Sprintf("stored certificate is for %v, tls.domains is %v", sanList(stored.Leaf), domains)
	case stored.Leaf.NotAfter.Sub(now) < selfSignedRenewBefore:
		why = fmt.Sprintf("stored certificate expires %s", stored.Leaf.NotAfter.Format(time.DateOnly))
	default:
		s.cert = &stored
		return s, nil
	}

	log.Info("making a new self-signed certificate", "reason", why, "domains", domains, "cert_file", s.certFile)
	certPEM, keyPEM, err := makeSelfSigned(domains, now)
	if err != nil {
		return nil, fmt.Errorf("making a self-signed certificate for %v: %w", domains, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err == nil {
		err = parseLeaf(&cert)
	}
	if err != nil {
		return nil, fmt.Errorf("making a self-signed certificate for %v: %w", domains, err)
	}
	s.cert = &cert
	if err := storeSelfSigned(dir, s.certFile, certPEM, s.keyFile, keyPEM); err != nil {
		log.Warn("self-signed certificate not stored; serving it anyway, but the next start makes another, which clients will not trust yet; make state.dir writable by routied",
			"dir", dir, "err", err)
	}
	return s, nil
}

// makeSelfSigned returns a new ECDSA P-256 certificate and its PKCS #8 key, PEM-encoded,
// for domains: IP SANs for entries that parse as IPs, DNS SANs for the others, and the
// first domain as common name.
func makeSelfSigned(domains []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	dns, ips := splitNames(domains)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: domains[0], Organization: []string{"routie self-signed"}},
		// An hour back, so a client whose clock runs a little slow accepts it at once.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// storeSelfSigned writes the pair into dir, key first: a crash between the two leaves a
// pair that does not match, which the next start replaces.
func storeSelfSigned(dir, certFile string, certPEM []byte, keyFile string, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// MkdirAll leaves an existing directory's mode alone; the key must not be listable.
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certFile, certPEM, 0o644)
}

// splitNames splits domains into DNS names and IP addresses.
func splitNames(domains []string) (dns []string, ips []net.IP) {
	for _, d := range domains {
		if ip := net.ParseIP(d); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, d)
		}
	}
	return dns, ips
}

// sameNames reports whether leaf's SANs are exactly domains, in any order, DNS names compared
// without case.
func sameNames(leaf *x509.Certificate, domains []string) bool {
	want := map[string]bool{}
	dns, ips := splitNames(domains)
	for _, d := range dns {
		want[strings.ToLower(d)] = true
	}
	for _, ip := range ips {
		want[ip.String()] = true
	}
	have := map[string]bool{}
	for _, n := range sanList(leaf) {
		have[strings.ToLower(n)] = true
	}
	if len(have) != len(want) {
		return false
	}
	for n := range want {
		if !have[n] {
			return false
		}
	}
	return true
}

// parseLeaf sets cert.Leaf if X509KeyPair left it nil, as it does under
// GODEBUG=x509keypairleaf=0.
func parseLeaf(cert *tls.Certificate) error {
	if cert.Leaf != nil {
		return nil
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	cert.Leaf = leaf
	return err
}
