// Package control is routied's control protocol: HTTP+JSON on a unix socket, served by the
// daemon (NewServer, Listen) and spoken by routiectl and tests through the one Client.
//
// Routes, all under http://routie (the host is ignored):
//
//	GET  /v1/status    StatusResponse
//	POST /v1/switch    SwitchRequest   → NDJSON stream of StreamLine
//	POST /v1/rollback  RollbackRequest → NDJSON stream of StreamLine (empty body allowed)
//	POST /v1/health    HealthRequest   → health.Result (a failed probe is still 200)
//	GET  /v1/version   VersionResponse
//	POST /v1/canary         CanaryRequest → NDJSON stream of StreamLine
//	POST /v1/canary/weight  CanaryWeightRequest → switcher.Report
//	POST /v1/promote        PromoteRequest → NDJSON stream of StreamLine (empty body allowed)
//	POST /v1/canary/abort   NDJSON stream of StreamLine (empty body)
//	POST /v1/deploy         DeployRequest → NDJSON stream of DeployLine
//	POST /v1/deploy/abort   DeployAbortResponse
//	GET  /v1/history        HistoryResponse
//	GET  /v1/certs          CertsResponse
//	POST /v1/certs/renew    RenewRequest → CertStatus (after the new certificate is served)
//	POST /v1/upgrade        UpgradeResponse (once the new routied serves; empty body)
//
// The certs routes exist when the daemon serves certificates (NewHandler's
// WithCertificates); GET /v1/status then has a "certs" list too. POST /v1/upgrade exists
// when the daemon can replace itself (WithUpgrader).
//
// so that, for example, `curl --unix-socket /run/routie/control.sock http://routie/v1/status`
// works. Errors are {"error": Error}; the doc of Error maps them to status codes.
package control

import (
	"fmt"
	"time"

	"github.com/routie/routie/deploy"
	"github.com/routie/routie/switcher"
)

// Version is the routie version, reported by GET /v1/version and by routiectl. Set it at build
// time: go build -ldflags "-X github.com/routie/routie/control.Version=1.2.3". Default "dev".
var Version = "dev"

// Route paths.
const (
	PathStatus   = "/v1/status"
	PathSwitch   = "/v1/switch"
	PathRollback = "/v1/rollback"
	PathHealth   = "/v1/health"
	PathVersion  = "/v1/version"
	PathCerts    = "/v1/certs"
	PathRenew    = "/v1/certs/renew"
)

// SwitchRequest is the body of POST /v1/switch: {"target":"8081","wait":"30s","force":false}.
type SwitchRequest struct {
	// Target is a port ("8081") or host:port ("127.0.0.1:8081"). Required.
	Target string `json:"target"`
	// Wait overrides health.wait for this switch when positive, e.g. "30s" on the wire.
	// Default 0: use health.wait.
	Wait Duration `json:"wait,omitempty"`
	// Force skips the health gate. Default false.
	Force bool `json:"force,omitempty"`
}

// RollbackRequest is the body of POST /v1/rollback: {"force":false}. An empty body is the
// zero value.
type RollbackRequest struct {
	// Force skips the probe of the standby. Default false.
	Force bool `json:"force,omitempty"`
	// Start runs deploy.start for the standby first (a deploy stopped it) and then switches
	// through the health gate. Needs the deploy routes. Default false.
	Start bool `json:"start,omitempty"`
}

// HealthRequest is the body of POST /v1/health: {"target":"8081"}.
type HealthRequest struct {
	// Target is a port ("8081") or host:port ("127.0.0.1:8081"). Required.
	Target string `json:"target"`
}

// StatusResponse is the answer to GET /v1/status: the switcher's status, the daemon's
// version and the certificates it serves.
type StatusResponse struct {
	switcher.Status
	// Version is the daemon's Version.
	Version string `json:"version"`
	// PID is the daemon's process ID: after `routiectl upgrade`, the new process's.
	PID int `json:"pid"`
	// Certs is the certificate served for each name, as GET /v1/certs has it; absent when
	// the daemon serves no HTTPS.
	Certs []CertStatus `json:"certs,omitempty"`
	// Deploy is the deploy in progress: its phase, the time left in its monitor window and
	// the two targets side by side; absent when none runs.
	Deploy *deploy.Status `json:"deploy,omitempty"`
}

// CertsResponse is the answer to GET /v1/certs.
type CertsResponse struct {
	// Certs has one entry per name served over HTTPS, in tls.domains order. Empty when the
	// daemon serves no HTTPS.
	Certs []CertStatus `json:"certs"`
}

// CertStatus is the certificate served for one name:
//
//	{"name":"example.com","mode":"acme","issuer":"CN=R11,O=Let's Encrypt,C=US",
//	 "not_after":"2026-08-29T10:11:12Z","days_left":89,...}
type CertStatus struct {
	// Name is the server name: one of tls.domains, or for tls.mode "files" a name in the
	// certificate.
	Name string `json:"name"`
	// Mode is the tls.mode serving it: "acme", "files" or "self-signed".
	Mode string `json:"mode"`
	// Issuer is the certificate's issuer's distinguished name. Issuer, Serial, NotBefore,
	// NotAfter and DaysLeft are absent while there is no certificate yet (tls.mode "acme",
	// before the first one is obtained).
	Issuer    string    `json:"issuer,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// DaysLeft is whole days until NotAfter, negative once expired.
	DaysLeft *int `json:"days_left,omitempty"`
	// CA is the ACME directory URL the certificate comes from; absent for other modes.
	CA string `json:"ca,omitempty"`
	// LastError says why the last attempt to obtain, renew or (mode "files") reload the
	// certificate failed, and LastErrorAt when; absent after a success.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// NextAttempt is when routied tries again to obtain a first certificate; absent when it
	// is not waiting to.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Warning says what needs the operator, or is absent: no certificate after a failed
	// attempt, an expired one, or one that expires within 7 days and that routied failed to
	// renew (or, outside "acme", cannot renew).
	Warning string `json:"warning,omitempty"`
}

// RenewRequest is the body of POST /v1/certs/renew: {"name":"example.com"}.
type RenewRequest struct {
	// Name is one of tls.domains. Required.
	Name string `json:"name"`
}

// VersionResponse is the answer to GET /v1/version.
type VersionResponse struct {
	// Version is the daemon's Version.
	Version string `json:"version"`
	// Go is the Go release the daemon was built with, e.g. "go1.26.0".
	Go string `json:"go"`
}

// StreamLine is one line of the NDJSON answer to a switch or rollback. Exactly one field is
// set: an Event for every step as it happens, then either Result or Error as the last line.
// A plain (non-streamed) error answer has the same shape with only Error set.
type StreamLine struct {
	Event  *switcher.Event  `json:"event,omitempty"`
	Result *switcher.Report `json:"result,omitempty"`
	Error  *Error           `json:"error,omitempty"`
}

// Duration is a time.Duration that reads and writes as a Go duration string ("30s", "2m").
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return &durationError{input: string(b)}
	}
	*d = Duration(v)
	return nil
}

// durationError is a wait that does not parse; the handler turns it into a 400 that says what
// to write instead.
type durationError struct{ input string }

func (e *durationError) Error() string {
	return fmt.Sprintf("%q is not a duration; write a number with a unit, such as \"30s\" or \"2m\"", e.input)
}
