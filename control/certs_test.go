package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routie/routie/internal/testrig"
)

// certsFake serves fixed certificates and renews by swapping in renewed.
type certsFake struct {
	mu      sync.Mutex
	certs   []CertStatus
	renewed CertStatus
	asked   []string
}

func (f *certsFake) Certs() []CertStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.certs
}

func (f *certsFake) Renew(_ context.Context, name string) (CertStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, name)
	switch name {
	case "unknown.test":
		return CertStatus{}, &Error{Kind: KindBadRequest, Message: `"unknown.test" is not in tls.domains ["routie.test"]`, Status: http.StatusBadRequest}
	case "refused.test":
		return CertStatus{}, errors.New("acme: 403 urn:ietf:params:acme:error:unauthorized: 127.0.0.1: connection refused")
	}
	return f.renewed, nil
}

func TestCertsAreListedAndInStatus(t *testing.T) {
	days := 89
	notAfter := time.Date(2026, 8, 29, 10, 11, 12, 0, time.UTC)
	fake := &certsFake{certs: []CertStatus{
		{Name: "routie.test", Mode: "acme", Issuer: "CN=Pebble Intermediate CA 1a2b3c", Serial: "1f", NotAfter: notAfter, DaysLeft: &days, CA: "https://127.0.0.1:14000/dir"},
		{Name: "www.routie.test", Mode: "acme", CA: "https://127.0.0.1:14000/dir", LastError: "connection refused",
			LastErrorAt: notAfter.Add(-time.Hour), Warning: "no certificate yet; HTTPS for this name fails until one is obtained. Last attempt: connection refused"},
	}}
	app := testrig.StartApp(t, "")
	c := newRig(t, app, WithCertificates(fake)).client

	got, err := c.Certs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Certs, fake.certs) {
		t.Errorf("Certs() =\n%+v\nwant\n%+v", got.Certs, fake.certs)
	}
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st.Certs, fake.certs) || st.Active.Addr != app.Addr() {
		t.Errorf("Status() = %+v, want the switcher's status and the certs", st)
	}

	// A name without a certificate yet has no dates or days_left at all, rather than a
	// year-1 date and 0 days a script would misread.
	raw, _ := c.CertsJSON(t.Context())
	var wire struct{ Certs []map[string]any }
	if err := json.Unmarshal(raw, &wire); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"not_after", "not_before", "days_left", "issuer", "next_attempt"} {
		if _, ok := wire.Certs[1][key]; ok {
			t.Errorf("a name without a certificate has %q in its JSON: %s", key, raw)
		}
	}
	if wire.Certs[0]["days_left"] != float64(89) || wire.Certs[0]["not_after"] != "2026-08-29T10:11:12Z" {
		t.Errorf("certs JSON = %s, want days_left 89 and not_after 2026-08-29T10:11:12Z", raw)
	}
}

func TestRenewAnswersTheNewCertificateOrSaysWhyNot(t *testing.T) {
	fake := &certsFake{renewed: CertStatus{Name: "routie.test", Mode: "acme", Serial: "2a"}}
	c := newRig(t, testrig.StartApp(t, ""), WithCertificates(fake)).client

	st, err := c.RenewCert(t.Context(), "routie.test")
	if err != nil || st.Serial != "2a" {
		t.Errorf("RenewCert(routie.test) = %+v, %v; want the renewed certificate", st, err)
	}

	tests := []struct {
		name   string
		kind   string
		status int
		msg    string
	}{
		{"unknown.test", KindBadRequest, 400, `"unknown.test" is not in tls.domains`},
		{"refused.test", KindInternal, 500, "urn:ietf:params:acme:error:unauthorized"},
		{"", KindBadRequest, 400, `missing "name"; send {"name": "example.com"}, a name of tls.domains`},
	}
	for _, tt := range tests {
		_, err := c.RenewCert(t.Context(), tt.name)
		var e *Error
		if !errors.As(err, &e) || e.Kind != tt.kind || e.Status != tt.status || !strings.Contains(e.Message, tt.msg) {
			t.Errorf("RenewCert(%q) error = %#v, want %s %d containing %q", tt.name, err, tt.kind, tt.status, tt.msg)
		}
	}
}

func TestWithoutCertificatesThereAreNoCertsRoutes(t *testing.T) {
	c := newRig(t, testrig.StartApp(t, "")).client
	_, err := c.Certs(t.Context())
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindNotFound {
		t.Errorf("GET %s without certificates: %v, want not_found", PathCerts, err)
	}
	raw, err := c.StatusJSON(t.Context())
	if err != nil || strings.Contains(string(raw), `"certs"`) {
		t.Errorf("status without certificates = %s (%v), want no certs key", raw, err)
	}
}

func TestNoCertificatesIsAnEmptyListNotNull(t *testing.T) {
	c := newRig(t, testrig.StartApp(t, ""), WithCertificates(&certsFake{})).client
	raw, err := c.CertsJSON(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(raw)), ""); got != `{"certs":[]}` {
		t.Errorf("certs answer = %s, want {\"certs\": []}", raw)
	}
}
