package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/routie/routie/control"
	routietls "github.com/routie/routie/tls"
)

// certsAPI answers the control API's certs routes from the daemon's certificates.
type certsAPI struct{ d *daemon }

// Certs describes each name's certificate, with the warning status shows; nil when
// routied serves no HTTPS.
func (a certsAPI) Certs() []control.CertStatus {
	if a.d.certs == nil {
		return nil
	}
	now := time.Now()
	var out []control.CertStatus
	for _, s := range a.d.certs.Status() {
		out = append(out, certStatus(s, now))
	}
	return out
}

// Renew renews name's ACME certificate now. A name or mode routied cannot renew is the
// caller's mistake, a 400; the CA's refusal is a 500 whose message is the CA's.
func (a certsAPI) Renew(ctx context.Context, name string) (control.CertStatus, error) {
	if a.d.certs == nil {
		return control.CertStatus{}, badRequest(`listen.https is ""; routied serves no certificates`)
	}
	if err := a.d.certs.Renew(ctx, name); err != nil {
		if errors.Is(err, routietls.ErrNotACME) || errors.Is(err, routietls.ErrUnknownName) {
			return control.CertStatus{}, badRequest(err.Error())
		}
		return control.CertStatus{}, err
	}
	for _, s := range a.d.certs.Status() {
		if s.Name == name {
			return certStatus(s, time.Now()), nil
		}
	}
	return control.CertStatus{}, errors.New("renewed, but the certificate is no longer managed (did tls.domains just change?)")
}

func badRequest(msg string) *control.Error {
	return &control.Error{Kind: control.KindBadRequest, Message: msg, Status: http.StatusBadRequest}
}

// certStatus is s on the wire, with the days left and warning as of now.
func certStatus(s routietls.NameStatus, now time.Time) control.CertStatus {
	c := control.CertStatus{
		Name:        s.Name,
		Mode:        s.Mode,
		Issuer:      s.Issuer,
		Serial:      s.Serial,
		NotBefore:   s.NotBefore,
		NotAfter:    s.NotAfter,
		CA:          s.CA,
		LastError:   s.LastError,
		LastErrorAt: s.LastErrorAt,
		NextAttempt: s.NextAttempt,
		Warning:     s.Warning(now),
	}
	if !s.NotAfter.IsZero() {
		days := int(s.NotAfter.Sub(now) / (24 * time.Hour))
		c.DaysLeft = &days
	}
	return c
}
