package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/control"
	"github.com/routie/routie/internal/testrig"
)

// certsFake is the daemon's certificates: fixed ones, and a renewal that answers renewed.
type certsFake struct {
	certs   []control.CertStatus
	renewed control.CertStatus
}

func (f *certsFake) Certs() []control.CertStatus { return f.certs }

func (f *certsFake) Renew(_ context.Context, name string) (control.CertStatus, error) {
	switch name {
	case "routie.test":
		return f.renewed, nil
	case "refused.test":
		return control.CertStatus{}, errors.New("acme: 429 urn:ietf:params:acme:error:rateLimited: too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s")
	}
	return control.CertStatus{}, &control.Error{Kind: control.KindBadRequest, Status: http.StatusBadRequest,
		Message: `no certificate is managed for that name: "` + name + `" is not in tls.domains ["routie.test"]`}
}

// ctl runs routiectl in-process, as main does, and returns its exit code and output.
func ctl(t *testing.T, socket string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), append([]string{"--socket", socket}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func days(n int) *int { return &n }

var (
	notAfter = time.Now().Add(89*24*time.Hour + time.Hour).Truncate(time.Second)
	valid    = control.CertStatus{Name: "routie.test", Mode: "acme", Issuer: "CN=Pebble Intermediate CA 1a2b3c", Serial: "1f",
		NotAfter: notAfter, DaysLeft: days(89), CA: "https://127.0.0.1:14000/dir"}
	pending = control.CertStatus{Name: "www.routie.test", Mode: "acme", CA: "https://127.0.0.1:14000/dir"}
	failing = control.CertStatus{Name: "old.routie.test", Mode: "acme", Issuer: "CN=Pebble Intermediate CA 1a2b3c", Serial: "2e",
		NotAfter: time.Now().Add(3*24*time.Hour + time.Hour).Truncate(time.Second), DaysLeft: days(3), CA: "https://127.0.0.1:14000/dir",
		LastError: "connection refused", LastErrorAt: time.Now().Add(-time.Minute),
		Warning: "expires in 3 days; renewal failed: connection refused"}
)

func TestCertsShowsEachNameIssuerAndExpiry(t *testing.T) {
	socket := newRig(t, testrig.StartApp(t, ""), control.WithCertificates(&certsFake{certs: []control.CertStatus{valid, pending}})).Socket
	code, out, errOut := ctl(t, socket, "certs")
	want := regexp.MustCompile(`^` + strings.Join([]string{
		`NAME +ISSUER +EXPIRES +DAYS LEFT`,
		`routie\.test +CN=Pebble Intermediate CA 1a2b3c +` + regexp.QuoteMeta(notAfter.Local().Format(time.DateTime)) + ` +89`,
		`www\.routie\.test +- +none yet +being obtained`,
	}, "\n") + "\n$")
	if code != 0 || errOut != "" || !want.MatchString(out) {
		t.Errorf("routiectl certs: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and stdout matching\n%s", code, errOut, out, want)
	}
}

func TestCertsExitsOneAndSaysWhyWhenACertificateNeedsAttention(t *testing.T) {
	socket := newRig(t, testrig.StartApp(t, ""), control.WithCertificates(&certsFake{certs: []control.CertStatus{valid, failing}})).Socket
	code, out, _ := ctl(t, socket, "certs")
	if code != 1 || !strings.HasSuffix(out, "\nold.routie.test: warning: expires in 3 days; renewal failed: connection refused\n") {
		t.Errorf("routiectl certs with a failing renewal: exit %d, stdout:\n%s\nwant exit 1 and the warning last", code, out)
	}
	code, out, _ = ctl(t, socket, "certs", "--json")
	if code != 1 || !strings.Contains(out, `"warning": "expires in 3 days; renewal failed: connection refused"`) {
		t.Errorf("routiectl certs --json with a failing renewal: exit %d, stdout:\n%s", code, out)
	}
}

func TestCertsJSONPrintsTheDaemonsAnswerAsIs(t *testing.T) {
	socket := newRig(t, testrig.StartApp(t, ""), control.WithCertificates(&certsFake{certs: []control.CertStatus{valid}})).Socket
	raw, err := control.NewClient(socket).CertsJSON(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := ctl(t, socket, "certs", "--json")
	if code != 0 || out != string(raw) {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", code, out, raw)
	}
}

func TestCertsRenewPrintsTheNewCertificateOrWhyNot(t *testing.T) {
	renewed := valid
	renewed.Serial = "3c"
	socket := newRig(t, testrig.StartApp(t, ""), control.WithCertificates(&certsFake{renewed: renewed})).Socket

	code, out, errOut := ctl(t, socket, "certs", "renew", "routie.test")
	wantOut := "renewing routie.test...\nrenewed routie.test: serving certificate 3c from CN=Pebble Intermediate CA 1a2b3c, valid until " +
		notAfter.Local().Format(time.DateTime) + " (89 days)\n"
	if code != 0 || out != wantOut || errOut != "" {
		t.Errorf("certs renew: exit %d, stdout %q, stderr %q; want 0 and %q", code, out, errOut, wantOut)
	}

	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"a name that is not served", []string{"certs", "renew", "other.test"}, 2,
			"Error: no certificate is managed for that name: \"other.test\" is not in tls.domains [\"routie.test\"]\nTry: routiectl certs renew NAME, with a name routiectl certs lists\n"},
		{"the CA refuses", []string{"certs", "renew", "refused.test"}, 1,
			"Error: renewal of refused.test failed; the current certificate stays: acme: 429 urn:ietf:params:acme:error:rateLimited: too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s\nTry: routiectl certs, and routied's log (journalctl -u routied)\n"},
		{"no name", []string{"certs", "renew"}, 2,
			"Error: certs renew needs one NAME, a name of tls.domains\nTry: routiectl certs renew example.com (routiectl certs lists the names)\n"},
		{"an argument that is not renew", []string{"certs", "routie.test"}, 2,
			"Error: certs takes no arguments but renew NAME, got [\"routie.test\"]\nTry: routiectl certs, or routiectl certs renew NAME\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := ctl(t, socket, tt.args...)
			if code != tt.code || errOut != tt.err {
				t.Errorf("routiectl %q: exit %d, stderr:\n%s\nwant exit %d, stderr:\n%s", tt.args, code, errOut, tt.code, tt.err)
			}
		})
	}
}

func TestStatusShowsEachCertificateWithItsWarning(t *testing.T) {
	app := testrig.StartApp(t, "")
	socket := newRig(t, app, control.WithCertificates(&certsFake{certs: []control.CertStatus{valid, pending, failing}})).Socket
	code, out, _ := ctl(t, socket, "status")
	// The rig runs no health monitor: the active target was never probed.
	want := regexp.MustCompile(`^` + strings.Join([]string{
		`active    ` + lit(app.Addr()) + `  unknown  since [^\n]+`,
		`          0 in flight, 0 streams, 0 connections, 0 served`,
		`standby   none: nothing to roll back to yet`,
		`cert      routie\.test  valid until ` + regexp.QuoteMeta(notAfter.Local().Format(time.DateTime)) + ` \(89 days\)`,
		`cert      www\.routie\.test  no certificate yet: being obtained`,
		`cert      old\.routie\.test  warning: expires in 3 days; renewal failed: connection refused`,
		`routied   \S+ \(pid \d+\)`,
	}, "\n") + "\n$")
	if code != 0 || !want.MatchString(out) {
		t.Errorf("routiectl status: exit %d, stdout:\n%s\nwant exit 0 and stdout matching:\n%s", code, out, want)
	}
}

func TestCertsHelpTeachesWithExamples(t *testing.T) {
	code, out, _ := ctl(t, "/nonexistent.sock", "certs", "-h")
	for _, want := range []string{"Usage: routiectl certs [--json]", "routiectl certs renew example.com", "--json", "Exit status"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("routiectl certs -h: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}
