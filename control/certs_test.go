package control

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/switcher"
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

// certsSwitcher is a Switcher that is never switched: these tests are about certificates.
type certsSwitcher struct{}

func (certsSwitcher) Switch(context.Context, string, switcher.SwitchOptions) (switcher.Report, error) {
	return switcher.Report{}, nil
}
func (certsSwitcher) Rollback(context.Context, switcher.SwitchOptions) (switcher.Report, error) {
	return switcher.Report{}, nil
}
func (certsSwitcher) Status() switcher.Status {
	return switcher.Status{Active: switcher.TargetStatus{Addr: "127.0.0.1:8080", Health: health.Up}}
}
func (certsSwitcher) Probe(context.Context, string) (health.Result, error) {
	return health.Result{}, nil
}
func (certsSwitcher) Canary(context.Context, string, int, switcher.SwitchOptions) (switcher.Report, error) {
	return switcher.Report{}, nil
}
func (certsSwitcher) SetCanaryWeight(int) (switcher.Report, error) { return switcher.Report{}, nil }
func (certsSwitcher) Promote(context.Context, switcher.SwitchOptions) (switcher.Report, error) {
	return switcher.Report{}, nil
}
func (certsSwitcher) AbortCanary(context.Context, switcher.SwitchOptions) (switcher.Report, error) {
	return switcher.Report{}, nil
}

// serveCerts runs the control API with opts on a real unix socket until the test ends and
// returns a client for it.
func serveCerts(t *testing.T, opts ...Option) *Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "rc") // a socket path must fit in 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "c.sock")
	l, err := Listen(socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(certsSwitcher{}, slog.New(slog.DiscardHandler), opts...)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return NewClient(socket)
}

func TestCertsAreListedAndInStatus(t *testing.T) {
	days := 89
	notAfter := time.Date(2026, 8, 29, 10, 11, 12, 0, time.UTC)
	fake := &certsFake{certs: []CertStatus{
		{Name: "routie.test", Mode: "acme", Issuer: "CN=Pebble Intermediate CA 1a2b3c", Serial: "1f", NotAfter: notAfter, DaysLeft: &days, CA: "https://127.0.0.1:14000/dir"},
		{Name: "www.routie.test", Mode: "acme", CA: "https://127.0.0.1:14000/dir", LastError: "connection refused",
			LastErrorAt: notAfter.Add(-time.Hour), Warning: "no certificate yet; HTTPS for this name fails until one is obtained. Last attempt: connection refused"},
	}}
	c := serveCerts(t, WithCertificates(fake))

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
	if !reflect.DeepEqual(st.Certs, fake.certs) || st.Active.Addr != "127.0.0.1:8080" {
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
	c := serveCerts(t, WithCertificates(fake))

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
	c := serveCerts(t)
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
	c := serveCerts(t, WithCertificates(&certsFake{}))
	raw, err := c.CertsJSON(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(raw)), ""); got != `{"certs":[]}` {
		t.Errorf("certs answer = %s, want {\"certs\": []}", raw)
	}
}
