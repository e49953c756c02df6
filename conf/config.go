// Package conf parses, validates and watches routied's TOML configuration file.
package conf

import (
	"os"
	"time"
)

// Config is routied's whole configuration. Every field has a default (see Default) and is
// documented, with its TOML key, in routie.example.toml.
type Config struct {
	Listen   Listen
	TLS      TLS
	Upstream Upstream
	Health   Health
	Drain    Drain
	Limits   Limits
	Deploy   Deploy
	Control  Control
	State    State
	Log      Log
	Metrics  Metrics

	// Path is the file the config was loaded from; "" for the embedded default.
	Path string
}

// Listen holds the public listeners. An empty address disables that listener.
type Listen struct {
	// HTTP is the plain-HTTP listen address. Default ":80".
	HTTP string
	// HTTPS is the TLS listen address. Default ":443".
	HTTPS string
}

// TLS modes.
const (
	TLSSelfSigned = "self-signed"
	TLSFiles      = "files"
	TLSACME       = "acme"
	TLSOff        = "off"
)

// ACME challenge types routied can answer on its own listeners.
const (
	ChallengeHTTP01    = "http-01"     // answered on listen.http
	ChallengeTLSALPN01 = "tls-alpn-01" // answered on listen.https
)

// ACME directories of Let's Encrypt.
const (
	LetsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// TLS says where the HTTPS listener's certificate comes from.
type TLS struct {
	// Mode is "acme", "self-signed" (default), "files" or "off". The default runs anywhere,
	// with no domain, email or open port 80; routie.production.toml sets "acme".
	Mode string
	// Domains are the names the certificate is for: with "acme", one certificate is
	// obtained per name. Default ["localhost"].
	Domains []string
	// Redirect sends plain-HTTP requests a 308 to https. Default true; false proxies plain
	// HTTP too (for setups behind another TLS terminator).
	Redirect bool
	// CertFile and KeyFile are PEM files, used when Mode is "files".
	CertFile string
	KeyFile  string

	// Email is the ACME account's contact address, required with "acme". Default "".
	Email string
	// CA is the ACME directory URL. Default LetsEncrypt.
	CA string
	// CARoot is a PEM file of roots to trust for the ACME server's own HTTPS, for a private
	// CA; "" trusts the system's roots. Default "".
	CARoot string
	// Storage is the directory for ACME accounts and certificates; "" means
	// State.Dir/acme. Default "".
	Storage string
	// Challenges are the ACME challenge types offered. Default ["http-01", "tls-alpn-01"].
	Challenges []string
	// EABKeyID and EABHMAC are the external account binding some CAs (ZeroSSL, Google)
	// require; both or neither. Default "".
	EABKeyID string
	EABHMAC  string

	// HSTS is the max-age of the Strict-Transport-Security header added to HTTPS answers
	// that lack one; 0 adds none. Default 0.
	HSTS time.Duration
}

// Upstream says where the app runs.
type Upstream struct {
	// Host is the host a bare port target refers to. Default "127.0.0.1".
	Host string
	// Initial is the port served when no saved state exists. Default 8080.
	Initial int
	// Ports are the slots a deploy alternates between: it deploys to the one that is not
	// active. Default [8080, 8081].
	Ports []int
}

// Deploy configures `routiectl deploy`: the commands that start and stop a version, and when
// routied rolls a new version back on its own.
type Deploy struct {
	// Start starts the new version; {port} (and {host}) are filled in, e.g.
	// "systemctl restart app@{port}". Default "": the version is started by hand.
	Start string
	// Stop stops the old version once the new one passed its window, e.g.
	// "systemctl stop app@{port}". Default "": the old version stays up as the standby.
	Stop string
	// StartTimeout bounds Start and Stop. Default 5m.
	StartTimeout time.Duration
	// Monitor is how long the new version is watched before the old one is stopped.
	// Default 5m.
	Monitor time.Duration
	// Sustain is the window over which a figure must stay bad before a rollback. Default 30s.
	Sustain time.Duration
	// MinRequests is how many answers a window needs before it is judged. Default 50.
	MinRequests int
	// MaxErrorRate is the share of 5xx answers that rolls back, when it is also at least
	// twice the old version's. Default 0.02.
	MaxErrorRate float64
	// MaxLatencyRatio is how many times the old version's p95 latency rolls back. Default 2.
	MaxLatencyRatio float64
	// LatencyFloor is a p95 the new version is never blamed for, whatever the ratio: a page
	// that went from 3ms to 9ms is not an outage, and at a few milliseconds scheduling
	// noise alone can double a p95. Default 20ms.
	LatencyFloor time.Duration
}

// Health configures the probes that gate a switch and watch active and standby.
type Health struct {
	// Path is the URL path probed with GET. Default "/actuator/health".
	Path string
	// Interval is the time between probes. Default 1s.
	Interval time.Duration
	// Timeout bounds one probe. Default 2s.
	Timeout time.Duration
	// Passes is how many consecutive passing probes a switch needs. Default 3.
	Passes int
	// Wait is how long a switch waits for those passes before it is refused. Default 120s.
	Wait time.Duration
	// ExpectBody, when set, must appear in a passing probe's body. Default "".
	ExpectBody string
}

// Drain bounds how long a retired target keeps its work.
type Drain struct {
	// Timeout is how long in-flight HTTP requests on the old target may run after a switch
	// before they are cancelled with a 504. Default 30s.
	Timeout time.Duration
	// Streams is how long upgraded connections (WebSocket) and event streams on the old
	// target stay open after a switch. Default 5m.
	Streams time.Duration
}

// Limits bound what one client can send and hold, as nginx's client_max_body_size,
// limit_conn, client_header_timeout and keepalive_timeout do.
type Limits struct {
	// MaxBody is the largest request body forwarded, in bytes; a larger one is answered
	// with 413 and never reaches the app whole. 0 forwards any size. Default 10 MiB: what
	// Spring Boot itself accepts by default (spring.servlet.multipart.max-request-size).
	MaxBody int64
	// MaxConnsPerClient is how many connections one client IP address may hold open at
	// once; more are closed as they are accepted. 0 is no cap. Default 256.
	MaxConnsPerClient int
	// HeaderTimeout bounds how long a client may take to send a request's headers.
	// Default 10s.
	HeaderTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next request.
	// Default 75s (nginx's keepalive_timeout).
	IdleTimeout time.Duration
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the address /metrics is served on, plain HTTP; "" serves no metrics.
	// Default "127.0.0.1:9180": this host only.
	Listen string
}

// Control configures the unix control socket used by routiectl.
type Control struct {
	// Socket is the socket's path. Default "/run/routie/control.sock".
	Socket string
	// Mode is the socket file's permission bits. Default 0660.
	Mode os.FileMode
}

// State says where routied keeps what must survive a restart.
type State struct {
	// Dir holds the active/standby state file, the self-signed certificate and, unless
	// tls.storage says otherwise, ACME accounts and certificates.
	// Default "/var/lib/routie".
	Dir string
}

// Log configures logging.
type Log struct {
	// Level is "debug", "info" (default), "warn" or "error".
	Level string
	// Format is "auto" (default: colours on a terminal, JSON otherwise), "text" or "json".
	Format string
	// Access logs one line per proxied request. Default true.
	Access bool
}

// Default returns the configuration used for every key the file does not set.
func Default() Config {
	return Config{
		Listen: Listen{HTTP: ":80", HTTPS: ":443"},
		TLS: TLS{
			Mode:       TLSSelfSigned,
			Domains:    []string{"localhost"},
			Redirect:   true,
			CA:         LetsEncrypt,
			Challenges: []string{ChallengeHTTP01, ChallengeTLSALPN01},
		},
		Upstream: Upstream{Host: "127.0.0.1", Initial: 8080, Ports: []int{8080, 8081}},
		Health: Health{
			Path:     "/actuator/health",
			Interval: time.Second,
			Timeout:  2 * time.Second,
			Passes:   3,
			Wait:     120 * time.Second,
		},
		Drain: Drain{Timeout: 30 * time.Second, Streams: 5 * time.Minute},
		Limits: Limits{
			MaxBody:           10 << 20,
			MaxConnsPerClient: 256,
			HeaderTimeout:     10 * time.Second,
			IdleTimeout:       75 * time.Second,
		},
		Control: Control{Socket: "/run/routie/control.sock", Mode: 0o660},
		State:   State{Dir: "/var/lib/routie"},
		Log:     Log{Level: "info", Format: "auto", Access: true},
		Metrics: Metrics{Listen: "127.0.0.1:9180"},
		Deploy: Deploy{
			StartTimeout:    5 * time.Minute,
			Monitor:         5 * time.Minute,
			Sustain:         30 * time.Second,
			MinRequests:     50,
			MaxErrorRate:    0.02,
			MaxLatencyRatio: 2,
			LatencyFloor:    20 * time.Millisecond,
		},
	}
}
