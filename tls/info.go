package tls

import (
	"crypto/x509"
	"log/slog"
	"time"
)

// Info describes a served certificate, for status output.
type Info struct {
	// Mode is the tls.mode it comes from: "self-signed" or "files".
	Mode string
	// Subject is its subject's distinguished name, e.g. "CN=example.com".
	Subject string
	// Names are its subject alternative names: DNS names, then IP addresses.
	Names []string
	// Issuer is its issuer's distinguished name; for a self-signed certificate, Subject.
	Issuer string
	// Serial is its serial number in lowercase hex.
	Serial string
	// NotBefore and NotAfter bound its validity.
	NotBefore, NotAfter time.Time
	// CertFile and KeyFile are the files it was read from, or for mode "self-signed" the
	// files it is kept in; clients that should trust it can be given CertFile.
	CertFile, KeyFile string
}

func infoOf(mode string, leaf *x509.Certificate, certFile, keyFile string) Info {
	return Info{
		Mode:      mode,
		Subject:   leaf.Subject.String(),
		Names:     sanList(leaf),
		Issuer:    leaf.Issuer.String(),
		Serial:    leaf.SerialNumber.Text(16),
		NotBefore: leaf.NotBefore,
		NotAfter:  leaf.NotAfter,
		CertFile:  certFile,
		KeyFile:   keyFile,
	}
}

// LogValue logs an Info as a group.
func (i Info) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mode", i.Mode),
		slog.String("subject", i.Subject),
		slog.Any("names", i.Names),
		slog.String("issuer", i.Issuer),
		slog.String("serial", i.Serial),
		slog.Time("not_after", i.NotAfter),
		slog.String("cert_file", i.CertFile),
	)
}

// sanList returns leaf's DNS names, then its IP addresses.
func sanList(leaf *x509.Certificate) []string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
