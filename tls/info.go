package tls

import (
	"crypto/x509"
	"log/slog"
	"time"
)

// Info describes a served certificate, for status output.
type Info struct {
	// Mode is the tls.mode it comes from: "self-signed", "files" or "acme". For "acme",
	// which serves a certificate per name, only Mode, Names and CA are set.
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
	// CA is the ACME directory URL, for mode "acme".
	CA string
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

// LogValue logs an Info as a group, leaving out what its mode does not set.
func (i Info) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("mode", i.Mode)}
	add := func(key, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(key, v))
		}
	}
	add("subject", i.Subject)
	attrs = append(attrs, slog.Any("names", i.Names))
	add("issuer", i.Issuer)
	add("serial", i.Serial)
	if !i.NotAfter.IsZero() {
		attrs = append(attrs, slog.Time("not_after", i.NotAfter))
	}
	add("cert_file", i.CertFile)
	add("ca", i.CA)
	return slog.GroupValue(attrs...)
}

// sanList returns leaf's DNS names, then its IP addresses.
func sanList(leaf *x509.Certificate) []string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
