package tls

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/routie/routie/conf"
)

// RenewalWarning is how close to its expiry a certificate is reported as a problem: an ACME
// certificate whose renewal failed, or a certificate routied cannot renew itself.
const RenewalWarning = 7 * 24 * time.Hour

// NameStatus is the state of the certificate served for one name, for routiectl certs and
// status.
type NameStatus struct {
	// Name is the server name: one of tls.domains, or for mode "files" a name in the
	// certificate.
	Name string
	// Mode is the tls.mode serving it.
	Mode string
	// Issuer (its distinguished name), Serial (lowercase hex), NotBefore and NotAfter
	// describe the certificate served for Name. All are zero while there is none yet: with
	// mode "acme", until the first certificate is obtained.
	Issuer              string
	Serial              string
	NotBefore, NotAfter time.Time
	// CA is the ACME directory URL the certificate comes from; "" for other modes.
	CA string
	// LastError says why the last attempt to obtain, renew or reload the certificate failed,
	// and LastErrorAt when; both are zero after a success.
	LastError   string
	LastErrorAt time.Time
	// NextAttempt is when routied tries again to obtain a first certificate; zero when it is
	// not waiting to.
	NextAttempt time.Time
}

func (s *NameStatus) setLeaf(leaf *x509.Certificate) {
	s.Issuer = leaf.Issuer.String()
	s.Serial = leaf.SerialNumber.Text(16)
	s.NotBefore, s.NotAfter = leaf.NotBefore, leaf.NotAfter
}

// statusOf lists each name of a source that serves one certificate.
func statusOf(mode string, leaf *x509.Certificate, lastError string, lastErrorAt time.Time) []NameStatus {
	var out []NameStatus
	for _, name := range sanList(leaf) {
		s := NameStatus{Name: name, Mode: mode, LastError: lastError, LastErrorAt: lastErrorAt}
		s.setLeaf(leaf)
		out = append(out, s)
	}
	return out
}

// Warning says, for an operator, what is wrong with the certificate at now, or "" if nothing
// is: an ACME name with no certificate after a failed attempt, an expired certificate, an
// ACME certificate within RenewalWarning of expiry whose renewal failed, or another mode's
// certificate within RenewalWarning of expiry (routied cannot renew those).
func (s NameStatus) Warning(now time.Time) string {
	left := s.NotAfter.Sub(now)
	switch {
	case s.NotAfter.IsZero():
		if s.LastError == "" {
			return "" // being obtained
		}
		return "no certificate yet; HTTPS for this name fails until one is obtained. Last attempt: " + s.LastError
	case left <= 0:
		return fmt.Sprintf("expired %s ago; clients refuse it%s", roundDays(-left), s.fix())
	case left >= RenewalWarning:
		return ""
	case s.Mode == conf.TLSACME && s.LastError == "":
		return "" // renewal has not failed (yet); certmagic is on it
	}
	return fmt.Sprintf("expires in %s%s", roundDays(left), s.fix())
}

// fix says what failed or what to do, after a warning about an expiry.
func (s NameStatus) fix() string {
	switch s.Mode {
	case conf.TLSACME:
		return "; renewal failed: " + s.LastError
	case conf.TLSFiles:
		if s.LastError != "" {
			return "; the last reload of tls.cert_file failed: " + s.LastError
		}
		return "; replace tls.cert_file and tls.key_file with a renewed pair (is certbot's timer running?)"
	default:
		return "; restart routied to make a new self-signed certificate"
	}
}

// roundDays writes d as operators count expiry: "3 days", "1 day", "5h".
func roundDays(d time.Duration) string {
	switch days := int(d / (24 * time.Hour)); {
	case days > 1:
		return fmt.Sprintf("%d days", days)
	case days == 1:
		return "1 day"
	}
	return d.Round(time.Minute).String()
}
