package tls

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/routie/routie/conf"
)

// files serves the certificate and key from tls.cert_file and tls.key_file, and reloads them
// when either file's directory changes (see watch.go).
type files struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	// cert is read on every handshake and replaced whole by a successful reload.
	cert atomic.Pointer[tls.Certificate]
	// failed is the last reload's error, nil after a reload that loaded the pair.
	failed atomic.Pointer[reloadFailure]

	// stop and done belong to the watcher goroutine; both are nil if it could not start.
	stop context.CancelFunc
	done chan struct{}
}

func (f *files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cert.Load(), nil
}

func (f *files) info() Info {
	return infoOf(conf.TLSFiles, f.cert.Load().Leaf, f.certFile, f.keyFile)
}

func (f *files) status() []NameStatus {
	var msg string
	var at time.Time
	if e := f.failed.Load(); e != nil {
		msg, at = e.err.Error(), e.at
	}
	return statusOf(conf.TLSFiles, f.cert.Load().Leaf, msg, at)
}

// reloadFailure is a pair of files that did not load, and when.
type reloadFailure struct {
	err error
	at  time.Time
}

func (f *files) close() {
	if f.stop == nil {
		return
	}
	f.stop()
	<-f.done
}

// openFiles loads the pair and starts watching it until ctx is done or close is called.
func openFiles(ctx context.Context, certFile, keyFile string, log *slog.Logger, o options) (*files, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New(`tls.mode "files" needs tls.cert_file and tls.key_file; set both to PEM files, or use tls.mode = "self-signed"`)
	}
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	f := &files{certFile: certFile, keyFile: keyFile, log: log, now: o.now}
	f.warnIfNotValid(cert.Leaf)
	f.cert.Store(cert)
	f.startWatching(ctx, o.debounce)
	return f, nil
}

// reload reads the pair again and serves it if it differs from the one being served. A pair
// that does not load is logged, and the previous certificate keeps serving.
func (f *files) reload() {
	cert, err := loadPair(f.certFile, f.keyFile)
	if err != nil {
		f.failed.Store(&reloadFailure{err: err, at: f.now()})
		f.log.Error("tls certificate files not reloaded; still serving the previous certificate",
			"cert_file", f.certFile, "key_file", f.keyFile, "err", err)
		return
	}
	f.failed.Store(nil)
	if slices.EqualFunc(cert.Certificate, f.cert.Load().Certificate, bytes.Equal) {
		f.log.Debug("tls certificate files changed, certificate did not", "cert_file", f.certFile)
		return
	}
	f.warnIfNotValid(cert.Leaf)
	f.cert.Store(cert)
	f.log.Info("tls certificate reloaded", "certificate", f.info())
}

// warnIfNotValid warns about a certificate that clients will reject for its dates. It is
// served anyway: refusing it would leave nothing to serve, or the older one being replaced.
func (f *files) warnIfNotValid(leaf *x509.Certificate) {
	now := f.now()
	switch {
	case now.After(leaf.NotAfter):
		f.log.Warn("tls.cert_file has expired; serving it anyway, clients will reject it until it is renewed",
			"cert_file", f.certFile, "not_after", leaf.NotAfter)
	case now.Before(leaf.NotBefore):
		f.log.Warn("tls.cert_file is not valid yet; serving it anyway, clients will reject it until then (or check this host's clock)",
			"cert_file", f.certFile, "not_before", leaf.NotBefore)
	}
}

// loadPair reads a PEM certificate chain and its private key. Its errors name the file, say
// what is wrong with it and what to do.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	chain, err := readChain(certFile)
	if err != nil {
		return nil, err
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, err
	}
	if !publicKeyMatches(chain[0].PublicKey, key) {
		for i, c := range chain[1:] {
			if publicKeyMatches(c.PublicKey, key) {
				return nil, fmt.Errorf("tls.key_file %q is the key of certificate %d of %d in tls.cert_file %q; put the server's own certificate first, then its intermediates",
					keyFile, i+2, len(chain), certFile)
			}
		}
		return nil, fmt.Errorf("tls.key_file %q does not match tls.cert_file %q: the key belongs to another certificate; give the key the certificate was issued for (certbot: privkey.pem beside fullchain.pem)",
			keyFile, certFile)
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// readChain returns the certificates in a PEM file, in file order.
func readChain(path string) ([]*x509.Certificate, error) {
	data, err := readFile("tls.cert_file", path)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	var others []string
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			others = append(others, block.Type)
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %q: certificate %d does not parse: %v; replace the file with the PEM certificate chain your CA issued",
				path, len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) > 0 {
		return chain, nil
	}
	switch {
	case len(others) > 0 && strings.HasSuffix(others[0], "PRIVATE KEY"):
		return nil, fmt.Errorf("tls.cert_file %q holds a private key, not a certificate; are tls.cert_file and tls.key_file swapped?", path)
	case len(others) > 0:
		return nil, fmt.Errorf("tls.cert_file %q holds a PEM %q block but no CERTIFICATE; give the certificate chain (certbot: fullchain.pem)", path, others[0])
	default:
		return nil, notPEM("tls.cert_file", path, data, "CERTIFICATE", "openssl x509 -inform der")
	}
}

// readKey returns the first private key in a PEM file.
func readKey(path string) (crypto.Signer, error) {
	data, err := readFile("tls.key_file", path)
	if err != nil {
		return nil, err
	}
	var others []string
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED"):
			return nil, fmt.Errorf("tls.key_file %q is encrypted with a passphrase; routied needs it unencrypted: openssl pkey -in %s -out key.pem, then keep key.pem readable only by routied",
				path, path)
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			key, err := parsePrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("tls.key_file %q: the %s block does not parse: %v; give an RSA, ECDSA or Ed25519 key in PEM", path, block.Type, err)
			}
			return key, nil
		default:
			// "EC PARAMETERS" comes before the key in openssl ecparam's output.
			others = append(others, block.Type)
		}
	}
	switch {
	case slices.Contains(others, "CERTIFICATE"):
		return nil, fmt.Errorf("tls.key_file %q holds a certificate, not a private key; are tls.cert_file and tls.key_file swapped?", path)
	case len(others) > 0:
		return nil, fmt.Errorf("tls.key_file %q holds a PEM %q block but no private key; give the key the certificate was issued for (certbot: privkey.pem)", path, others[0])
	default:
		return nil, notPEM("tls.key_file", path, data, "PRIVATE KEY", "openssl pkey -inform der")
	}
}

// readFile reads the file that config key names, with an error that says what to do.
func readFile(key, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s %q: %w; check the path, or use tls.mode = \"self-signed\"", key, path, fs.ErrNotExist)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%s %q: %w; let the user routied runs as read it", key, path, fs.ErrPermission)
	case err != nil:
		return nil, fmt.Errorf("%s %q: %w", key, path, err)
	}
	return data, nil
}

// notPEM explains a file in which no PEM block was found.
func notPEM(key, path string, data []byte, blockType, convert string) error {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return fmt.Errorf("%s %q is empty; give the PEM file, or wait for whatever writes it to finish", key, path)
	case data[0] == 0x30: // an ASN.1 SEQUENCE: DER, the binary form of PEM's contents
		return fmt.Errorf("%s %q is DER, not PEM; convert it: %s -in %s -out file.pem", key, path, convert, path)
	default:
		return fmt.Errorf("%s %q is not PEM: it has no \"-----BEGIN %s-----\" block", key, path, blockType)
	}
}

// parsePrivateKey parses the key formats crypto/tls accepts: PKCS #8, PKCS #1 and SEC 1.
func parsePrivateKey(der []byte) (crypto.Signer, error) {
	if key, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch key := key.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return key.(crypto.Signer), nil
		default:
			return nil, fmt.Errorf("a %T cannot sign TLS handshakes", key)
		}
	}
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	if key, err := x509.ParseECPrivateKey(der); err == nil {
		return key, nil
	}
	return nil, errors.New("not a PKCS #8, PKCS #1 or SEC 1 private key")
}

// publicKeyMatches reports whether key is the private half of pub.
func publicKeyMatches(pub crypto.PublicKey, key crypto.Signer) bool {
	k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(pub)
}
