package conf

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate reports every rule c breaks, each as an *Error naming the key, the value and a fix.
// Parse and Load already validate; Validate is for a Config built or changed in code. Its
// errors name c.Path but no line.
func (c Config) Validate() error {
	s := &source{name: c.Path, reported: map[string]bool{}}
	s.validate(c)
	return joinErrors(s.errs)
}

// validate checks the rules no single value's type can express: ranges, required keys, and
// keys that only make sense together. Fixes quote the default as an example.
func (s *source) validate(c Config) {
	def := Default()

	s.listenAddress("listen.http", c.Listen.HTTP, def.Listen.HTTP)
	s.listenAddress("listen.https", c.Listen.HTTPS, def.Listen.HTTPS)
	switch {
	case c.Listen.HTTP == "" && c.Listen.HTTPS == "":
		s.fail("listen", `listen.http and listen.https are both ""; set at least one, such as http = %s`, quote(def.Listen.HTTP))
	case c.Listen.HTTP == c.Listen.HTTPS:
		// Caught here because the bind error at startup ("address already in use") sends
		// the operator looking for another process.
		s.fail("listen.https", "%s is listen.http's address too; give HTTPS its own port, such as %s",
			s.shown("listen.https", quote(c.Listen.HTTPS)), quote(def.Listen.HTTPS))
	}

	s.tls(c, def)

	if c.Upstream.Host == "" {
		s.fail("upstream.host", `"" is empty; write the host the app listens on, such as %s`, quote(def.Upstream.Host))
	}
	if c.Upstream.Initial < 1 || c.Upstream.Initial > 65535 {
		s.fail("upstream.initial", "%s is not a port; write a port from 1 to 65535, such as %d",
			s.shown("upstream.initial", strconv.Itoa(c.Upstream.Initial)), def.Upstream.Initial)
	}

	switch {
	case c.Health.Path == "":
		s.fail("health.path", `"" is empty; write the path to probe, such as %s`, quote(def.Health.Path))
	case !strings.HasPrefix(c.Health.Path, "/"):
		s.fail("health.path", `%s does not start with "/"; write %s`, s.shown("health.path", quote(c.Health.Path)), quote("/"+c.Health.Path))
	}
	s.positive("health.interval", c.Health.Interval, def.Health.Interval)
	s.positive("health.timeout", c.Health.Timeout, def.Health.Timeout)
	if c.Health.Passes < 1 {
		s.fail("health.passes", "%s is less than 1; write how many probes in a row must pass, such as %d",
			s.shown("health.passes", strconv.Itoa(c.Health.Passes)), def.Health.Passes)
	}
	s.positive("health.wait", c.Health.Wait, def.Health.Wait)

	s.positive("drain.timeout", c.Drain.Timeout, def.Drain.Timeout)
	if c.Drain.Streams < 0 {
		s.fail("drain.streams", `%s is negative; write "0s" to close streams at once, or a grace period such as %s`,
			s.shown("drain.streams", quote(formatDuration(c.Drain.Streams))), quote(formatDuration(def.Drain.Streams)))
	}

	if c.Limits.MaxBody < 0 {
		s.fail("limits.max_body", `%s is negative; write "0" for no limit, or a size such as %s`,
			s.shown("limits.max_body", quote(formatSize(c.Limits.MaxBody))), quote(formatSize(def.Limits.MaxBody)))
	}
	if c.Limits.MaxConnsPerClient < 0 {
		s.fail("limits.max_conns_per_client", "%s is negative; write 0 for no cap, or a number such as %d",
			s.shown("limits.max_conns_per_client", strconv.Itoa(c.Limits.MaxConnsPerClient)), def.Limits.MaxConnsPerClient)
	}
	s.positive("limits.header_timeout", c.Limits.HeaderTimeout, def.Limits.HeaderTimeout)
	s.positive("limits.idle_timeout", c.Limits.IdleTimeout, def.Limits.IdleTimeout)

	if c.Control.Socket == "" {
		s.fail("control.socket", `"" is empty; write the socket's path, such as %s`, quote(def.Control.Socket))
	}
	if c.Control.Mode&^0o777 != 0 {
		s.fail("control.mode", "%s has bits outside 0777 (setuid, setgid, sticky or a file type); write permission bits only, such as %s",
			s.shown("control.mode", quote(formatMode(c.Control.Mode))), quote(formatMode(def.Control.Mode)))
	}

	if c.State.Dir == "" {
		s.fail("state.dir", `"" is empty; write a directory routied can write to, such as %s`, quote(def.State.Dir))
	}

	s.oneOf("log.level", c.Log.Level, "a log level", "debug", "info", "warn", "error")
	s.oneOf("log.format", c.Log.Format, "a log format", "auto", "text", "json")

	s.listenAddress("metrics.listen", c.Metrics.Listen, def.Metrics.Listen)
	for _, l := range []struct{ key, addr string }{{"listen.http", c.Listen.HTTP}, {"listen.https", c.Listen.HTTPS}} {
		if c.Metrics.Listen != "" && c.Metrics.Listen == l.addr {
			s.fail("metrics.listen", "%s is %s's address too; give the metrics their own port, such as %s",
				s.shown("metrics.listen", quote(c.Metrics.Listen)), l.key, quote(def.Metrics.Listen))
		}
	}

	for _, p := range c.Upstream.Ports {
		if p < 1 || p > 65535 {
			s.fail("upstream.ports", "%d is not a port; write ports from 1 to 65535, such as [8080, 8081]", p)
		}
	}
	s.positive("deploy.start_timeout", c.Deploy.StartTimeout, def.Deploy.StartTimeout)
	s.positive("deploy.monitor", c.Deploy.Monitor, def.Deploy.Monitor)
	s.positive("deploy.sustain", c.Deploy.Sustain, def.Deploy.Sustain)
	if c.Deploy.Sustain > c.Deploy.Monitor {
		s.fail("deploy.sustain", "%s is longer than deploy.monitor (%s), so no window could ever be judged; write a duration shorter than the monitor window, such as %s",
			s.shown("deploy.sustain", quote(formatDuration(c.Deploy.Sustain))), formatDuration(c.Deploy.Monitor), quote(formatDuration(def.Deploy.Sustain)))
	}
	if c.Deploy.MinRequests < 1 {
		s.fail("deploy.min_requests", "%s is less than 1; write how many answers a window needs before it is judged, such as %d",
			s.shown("deploy.min_requests", strconv.Itoa(c.Deploy.MinRequests)), def.Deploy.MinRequests)
	}
	if r := c.Deploy.MaxErrorRate; r <= 0 || r > 1 {
		s.fail("deploy.max_error_rate", "%s is not a share between 0 and 1; write one such as %s (2%% of requests)",
			s.shown("deploy.max_error_rate", formatFloat(r)), formatFloat(def.Deploy.MaxErrorRate))
	}
	if r := c.Deploy.MaxLatencyRatio; r != 0 && r <= 1 {
		s.fail("deploy.max_latency_ratio", "%s would roll back a release as fast as the old one; write a ratio above 1 such as %s, or 0 to ignore latency",
			s.shown("deploy.max_latency_ratio", formatFloat(r)), formatFloat(def.Deploy.MaxLatencyRatio))
	}
	if c.Deploy.LatencyFloor < 0 {
		s.fail("deploy.latency_floor", "%s is negative; write the p95 below which a release is never called slow, such as %s, or \"0s\" for none",
			s.shown("deploy.latency_floor", quote(formatDuration(c.Deploy.LatencyFloor))), quote(formatDuration(def.Deploy.LatencyFloor)))
	}
}

// tls checks the [tls] table against the HTTPS listener it serves.
func (s *source) tls(c Config, def Config) {
	mode := quote(c.TLS.Mode)
	modes := fmt.Sprintf("%s, %s or %s", quote(TLSACME), quote(TLSSelfSigned), quote(TLSFiles))
	switch c.TLS.Mode {
	case TLSSelfSigned:
		if len(c.TLS.Domains) == 0 {
			s.fail("tls.domains", `[] is empty, but tls.mode = "self-signed" needs a name for the certificate; write %s`,
				formatValue(anyList(def.TLS.Domains)))
		}
	case TLSFiles:
		if c.TLS.CertFile == "" {
			s.fail("tls.cert_file", `%s, but tls.mode = "files" needs it; write the path of the PEM certificate (chain)`, s.unset("tls.cert_file"))
		}
		if c.TLS.KeyFile == "" {
			s.fail("tls.key_file", `%s, but tls.mode = "files" needs it; write the path of the PEM private key`, s.unset("tls.key_file"))
		}
	case TLSACME:
		s.acme(c, def)
	case TLSOff:
		if c.Listen.HTTPS != "" {
			https := quote(c.Listen.HTTPS)
			if _, ok := s.pos["listen.https"]; !ok {
				https += " (the default)"
			}
			s.fail("tls.mode", `"off" leaves no certificate for listen.https = %s; set listen.https = "" or pick a tls mode (%s)`,
				https, modes)
		}
	default:
		s.oneOf("tls.mode", c.TLS.Mode, "a tls mode", TLSACME, TLSSelfSigned, TLSFiles, TLSOff)
	}
	if slices.Contains(c.TLS.Domains, "") {
		s.fail("tls.domains", `%s lists an empty name; remove it`, s.shown("tls.domains", formatValue(anyList(c.TLS.Domains))))
	}
	// A certificate file that is silently not served is found by users, not at startup.
	// (When tls.mode itself is refused, its error is the one to fix first.)
	if c.TLS.Mode != TLSFiles && !s.reported["tls.mode"] {
		for _, k := range []struct{ key, value string }{{"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
			if k.value != "" {
				s.fail(k.key, `%s is set, but tls.mode = %s does not use it; set tls.mode = "files" to serve it, or remove %s`,
					s.shown(k.key, quote(k.value)), mode, k.key)
			}
		}
	}
	if c.TLS.HSTS < 0 {
		s.fail("tls.hsts", `%s is negative; write "0s" to send no Strict-Transport-Security header, or a max-age such as "8760h" (a year)`,
			s.shown("tls.hsts", quote(formatDuration(c.TLS.HSTS))))
	}
}

// acme checks the keys tls.mode = "acme" needs. The ACME keys are not checked in other
// modes, so switching tls.mode to "self-signed" for a while needs no other edit.
func (s *source) acme(c Config, def Config) {
	t := c.TLS
	if c.Listen.HTTPS == "" {
		s.fail("listen.https", `"" turns HTTPS off, but tls.mode = "acme" gets certificates for it; set listen.https, such as %s`, quote(def.Listen.HTTPS))
	}

	switch {
	case t.Email == "":
		s.fail("tls.email", `%s, but tls.mode = "acme" needs it: the CA sends expiry warnings and account notices there; write an address you read, such as "ops@your-domain.com"`,
			s.unset("tls.email"))
	case !looksLikeEmail(t.Email):
		s.fail("tls.email", `%s is not an email address; write one such as "ops@your-domain.com"`, s.shown("tls.email", quote(t.Email)))
	case isExampleName(t.Email[strings.LastIndex(t.Email, "@")+1:]):
		s.fail("tls.email", `%s is the example's placeholder; write an address you read, such as "ops@your-domain.com"`, s.shown("tls.email", quote(t.Email)))
	}

	const domainsExample = `["your-domain.com", "www.your-domain.com"]`
	_, written := s.pos["tls.domains"]
	switch {
	case len(t.Domains) == 0:
		s.fail("tls.domains", `[] is empty, but tls.mode = "acme" needs the names to get certificates for; write them, such as %s`, domainsExample)
	case !written && slices.Equal(t.Domains, def.TLS.Domains):
		// Not "localhost is not allowed": the operator never wrote it.
		s.fail("tls.domains", `is not set, but tls.mode = "acme" needs the names to get certificates for (the default, %s, is for "self-signed"); write them, such as %s`,
			formatValue(anyList(def.TLS.Domains)), domainsExample)
	}
	shownDomains := s.shown("tls.domains", formatValue(anyList(t.Domains)))
	var placeholders []string
	for _, name := range t.Domains {
		if name == "" {
			continue // reported for every mode
		}
		if problem := acmeNameProblem(name); problem != "" {
			s.fail("tls.domains", "%s lists %s, %s", shownDomains, quote(name), problem)
			continue
		}
		if isExampleName(name) {
			placeholders = append(placeholders, quote(name))
		}
	}
	switch len(placeholders) {
	case 0:
	case 1:
		s.fail("tls.domains", "%s lists the example's placeholder %s; write the names this host serves, whose DNS points here",
			shownDomains, placeholders[0])
	default:
		s.fail("tls.domains", "%s lists the example's placeholders %s and %s; write the names this host serves, whose DNS points here",
			shownDomains, strings.Join(placeholders[:len(placeholders)-1], ", "), placeholders[len(placeholders)-1])
	}

	if u, err := url.Parse(t.CA); err != nil || u.Scheme != "https" || u.Host == "" {
		s.fail("tls.ca", `%s is not an https URL; write the CA's ACME directory URL, such as %s (or %s to test)`,
			s.shown("tls.ca", quote(t.CA)), quote(LetsEncrypt), quote(LetsEncryptStaging))
	}

	shownChallenges := s.shown("tls.challenges", formatValue(anyList(t.Challenges)))
	if len(t.Challenges) == 0 {
		s.fail("tls.challenges", `[] is empty, but tls.mode = "acme" needs a way to prove the names are yours; write %s`, formatValue(anyList(def.TLS.Challenges)))
	}
	for _, ch := range t.Challenges {
		switch ch {
		case ChallengeHTTP01:
			if c.Listen.HTTP == "" {
				s.fail("tls.challenges", `%s has %s, which is answered on listen.http, but listen.http is ""; set listen.http = %s, or remove %s`,
					shownChallenges, quote(ch), quote(def.Listen.HTTP), quote(ch))
			}
		case ChallengeTLSALPN01:
		case "dns-01":
			s.fail("tls.challenges", `%s has "dns-01", which needs a DNS provider's API, and routied has none; write %s or %s`,
				shownChallenges, quote(ChallengeHTTP01), quote(ChallengeTLSALPN01))
		default:
			s.fail("tls.challenges", `%s has %s, which is not a challenge type; write %s or %s`,
				shownChallenges, quote(ch), quote(ChallengeHTTP01), quote(ChallengeTLSALPN01))
		}
	}

	switch {
	case t.EABKeyID != "" && t.EABHMAC == "":
		s.fail("tls.eab_hmac", `%s, but tls.eab_kid is set; the CA gives both: write the HMAC key it gave with the key ID`, s.unset("tls.eab_hmac"))
	case t.EABKeyID == "" && t.EABHMAC != "":
		s.fail("tls.eab_kid", `%s, but tls.eab_hmac is set; the CA gives both: write the key ID it gave with the HMAC key`, s.unset("tls.eab_kid"))
	case t.EABHMAC != "":
		if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(t.EABHMAC, "=")); err != nil {
			// The key itself is a secret: name it, do not quote it.
			s.fail("tls.eab_hmac", "is not base64url; paste the HMAC key exactly as the CA shows it")
		}
	}
}

// acmeNameProblem says why no ACME CA could validate name for routied, or "" if one may.
func acmeNameProblem(name string) string {
	switch {
	case strings.Contains(name, "://") || strings.ContainsAny(name, "/"):
		host := name
		if u, err := url.Parse(name); err == nil && u.Host != "" {
			host = u.Hostname()
		}
		return fmt.Sprintf("which is not a host name; write the name only: %s", quote(host))
	case strings.HasPrefix(name, "*."):
		return `a wildcard: wildcards need the dns-01 challenge, which routied does not support; list each name instead`
	case net.ParseIP(name) != nil:
		return ""
	case strings.Contains(name, ":"):
		host, _, _ := net.SplitHostPort(name)
		return fmt.Sprintf("which has a port; write the name only: %s", quote(host))
	case name == "localhost" || strings.HasSuffix(name, ".localhost"):
		return `which never resolves to this host for a CA; use tls.mode = "self-signed" for local names`
	case strings.ContainsAny(name, " \t@"):
		return "which is not a host name"
	}
	return ""
}

// isExampleName reports whether name is in a domain reserved for examples (RFC 2606), as
// the production example's placeholders are.
func isExampleName(name string) bool {
	name = strings.ToLower(name)
	for _, d := range []string{"example.com", "example.net", "example.org"} {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

func looksLikeEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(s, " \t<>\"") && !strings.Contains(domain, "@")
}

// listenAddress checks a listen address: "" (off) or host:port with a numeric port 1-65535.
func (s *source) listenAddress(key, addr, example string) {
	if addr == "" {
		return
	}
	shown := s.shown(key, quote(addr))
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fix := quote(example)
		if isDecimal(addr) {
			fix = quote(":" + addr)
		}
		s.fail(key, `%s is not host:port; write %s, or "" to turn this listener off`, shown, fix)
		return
	}
	_, examplePort, _ := net.SplitHostPort(example)
	fix := quote(net.JoinHostPort(host, examplePort))
	n, err := strconv.Atoi(port)
	switch {
	case err != nil:
		s.fail(key, "%s has port %s, which is not a number; write a port number, such as %s", shown, quote(port), fix)
	case n < 1 || n > 65535:
		s.fail(key, "%s has port %d, outside 1-65535; write a port in that range, such as %s", shown, n, fix)
	}
}

// unset words an empty string key for a message: `"" is empty` when the file writes it so,
// "is not set" when the file leaves it out.
func (s *source) unset(key string) string {
	if _, ok := s.pos[key]; ok {
		return `"" is empty`
	}
	return "is not set"
}

// positive checks a duration that must be more than zero.
func (s *source) positive(key string, d, example time.Duration) {
	if d <= 0 {
		s.fail(key, "%s is not more than zero; write a duration such as %s", s.shown(key, quote(formatDuration(d))), quote(formatDuration(example)))
	}
}

// oneOf checks a value against its choices, suggesting the one meant when it is close
// ("INFO", "warning", "selfsigned").
func (s *source) oneOf(key, v, what string, choices ...string) {
	if slices.Contains(choices, v) {
		return
	}
	shown := s.shown(key, quote(v))
	if c, ok := closest(strings.ToLower(v), choices); ok {
		s.fail(key, "%s is not %s; write %s", shown, what, quote(c))
		return
	}
	quoted := make([]string, len(choices))
	for i, c := range choices {
		quoted[i] = quote(c)
	}
	s.fail(key, "%s is not %s; write %s", shown, what, orList(quoted))
}
