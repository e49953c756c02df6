package conf

import (
	"errors"
	"strings"
	"testing"
)

func TestEveryValidationRuleIsEnforced(t *testing.T) {
	runErrorCases(t, []errorCase{
		// listen
		{"address without a colon", "[listen]\nhttp = \"80\"\n",
			`routie.toml:2: listen.http: "80" is not host:port; write ":80", or "" to turn this listener off`},
		{"address that is a word", "[listen]\nhttps = \"localhost\"\n",
			`routie.toml:2: listen.https: "localhost" is not host:port; write ":443", or "" to turn this listener off`},
		{"port above 65535", "[listen]\nhttps = \":99999\"\n",
			`routie.toml:2: listen.https: ":99999" has port 99999, outside 1-65535; write a port in that range, such as ":443"`},
		{"port zero", "[listen]\nhttp = \"127.0.0.1:0\"\n",
			`routie.toml:2: listen.http: "127.0.0.1:0" has port 0, outside 1-65535; write a port in that range, such as "127.0.0.1:80"`},
		{"port by name", "[listen]\nhttps = \":https\"\n",
			`routie.toml:2: listen.https: ":https" has port "https", which is not a number; write a port number, such as ":443"`},
		{"both listeners off", "[listen]\nhttp = \"\"\nhttps = \"\"\n",
			`routie.toml:1: listen: listen.http and listen.https are both ""; set at least one, such as http = ":80"`},
		{"both listeners on one address", "[listen]\nhttp = \":8000\"\nhttps = \":8000\"\n",
			`routie.toml:3: listen.https: ":8000" is listen.http's address too; give HTTPS its own port, such as ":443"`},

		// tls
		{"unknown tls mode", "[tls]\nmode = \"letsencrypt\"\n",
			`routie.toml:2: tls.mode: "letsencrypt" is not a tls mode; write "acme", "self-signed", "files" or "off"`},
		{"misspelt acme", "[tls]\nmode = \"ACME\"\n",
			`routie.toml:2: tls.mode: "ACME" is not a tls mode; write "acme"`},
		{"misspelt tls mode", "[tls]\nmode = \"self_signed\"\n",
			`routie.toml:2: tls.mode: "self_signed" is not a tls mode; write "self-signed"`},
		{"files without cert_file", "[tls]\nmode = \"files\"\ncert_file = \"\"\nkey_file = \"/etc/ssl/key.pem\"\n",
			`routie.toml:3: tls.cert_file: "" is empty, but tls.mode = "files" needs it; write the path of the PEM certificate (chain)`},
		{"files without key_file", "[tls]\nmode = \"files\"\ncert_file = \"/etc/ssl/cert.pem\"\n",
			`routie.toml: tls.key_file: is not set, but tls.mode = "files" needs it; write the path of the PEM private key`},
		{"self-signed without domains", "[tls]\ndomains = []\n",
			`routie.toml:2: tls.domains: [] is empty, but tls.mode = "self-signed" needs a name for the certificate; write ["localhost"]`},
		{"empty domain", "[tls]\ndomains = [\"example.com\", \"\"]\n",
			`routie.toml:2: tls.domains: ["example.com", ""] lists an empty name; remove it`},
		{"https listener with tls off", "[tls]\nmode = \"off\"\n",
			`routie.toml:2: tls.mode: "off" leaves no certificate for listen.https = ":443" (the default); set listen.https = "" or pick a tls mode ("acme", "self-signed" or "files")`},
		{"https listener set with tls off", "[listen]\nhttps = \":8443\"\n[tls]\nmode = \"off\"\n",
			`routie.toml:4: tls.mode: "off" leaves no certificate for listen.https = ":8443"; set listen.https = "" or pick a tls mode ("acme", "self-signed" or "files")`},
		{"cert_file that the mode ignores", "[tls]\ncert_file = \"/etc/ssl/cert.pem\"\nkey_file = \"/etc/ssl/key.pem\"\n", `routie.toml:2: tls.cert_file: "/etc/ssl/cert.pem" is set, but tls.mode = "self-signed" does not use it; set tls.mode = "files" to serve it, or remove tls.cert_file
routie.toml:3: tls.key_file: "/etc/ssl/key.pem" is set, but tls.mode = "self-signed" does not use it; set tls.mode = "files" to serve it, or remove tls.key_file`},

		{"negative hsts", "[tls]\nhsts = \"-1h\"\n",
			`routie.toml:2: tls.hsts: "-1h" is negative; write "0s" to send no Strict-Transport-Security header, or a max-age such as "8760h" (a year)`},

		// tls, mode "acme"
		{"acme without email", acmeWith(`email = ""`),
			`routie.toml:4: tls.email: "" is empty, but tls.mode = "acme" needs it: the CA sends expiry warnings and account notices there; write an address you read, such as "ops@your-domain.com"`},
		{"acme email without @", acmeWith(`email = "ops.routie.dev"`),
			`routie.toml:4: tls.email: "ops.routie.dev" is not an email address; write one such as "ops@your-domain.com"`},
		{"acme email left as the placeholder", acmeWith(`email = "ops@example.com"`),
			`routie.toml:4: tls.email: "ops@example.com" is the example's placeholder; write an address you read, such as "ops@your-domain.com"`},
		{"acme with the default domains", "[tls]\nmode = \"acme\"\nemail = \"ops@routie.dev\"\n",
			`routie.toml: tls.domains: is not set, but tls.mode = "acme" needs the names to get certificates for (the default, ["localhost"], is for "self-signed"); write them, such as ["your-domain.com", "www.your-domain.com"]`},
		{"acme for localhost", acmeWith(`domains = ["localhost", "app.localhost"]`),
			`routie.toml:3: tls.domains: ["localhost", "app.localhost"] lists "localhost", which never resolves to this host for a CA; use tls.mode = "self-signed" for local names`},
		{"acme without domains", acmeWith(`domains = []`),
			`routie.toml:3: tls.domains: [] is empty, but tls.mode = "acme" needs the names to get certificates for; write them, such as ["your-domain.com", "www.your-domain.com"]`},
		{"acme domains left as the placeholders", acmeWith(`domains = ["example.com", "www.example.com"]`),
			`routie.toml:3: tls.domains: ["example.com", "www.example.com"] lists the example's placeholders "example.com" and "www.example.com"; write the names this host serves, whose DNS points here`},
		{"acme domain written as a URL", acmeWith(`domains = ["https://routie.dev/"]`),
			`routie.toml:3: tls.domains: ["https://routie.dev/"] lists "https://routie.dev/", which is not a host name; write the name only: "routie.dev"`},
		{"acme domain with a port", acmeWith(`domains = ["routie.dev:443"]`),
			`routie.toml:3: tls.domains: ["routie.dev:443"] lists "routie.dev:443", which has a port; write the name only: "routie.dev"`},
		{"acme wildcard", acmeWith(`domains = ["*.routie.dev"]`),
			`routie.toml:3: tls.domains: ["*.routie.dev"] lists "*.routie.dev", a wildcard: wildcards need the dns-01 challenge, which routied does not support; list each name instead`},
		{"acme ca that is not https", acmeWith(`ca = "acme-v02.api.letsencrypt.org/directory"`),
			`routie.toml:5: tls.ca: "acme-v02.api.letsencrypt.org/directory" is not an https URL; write the CA's ACME directory URL, such as "https://acme-v02.api.letsencrypt.org/directory" (or "https://acme-staging-v02.api.letsencrypt.org/directory" to test)`},
		{"acme without challenges", acmeWith(`challenges = []`),
			`routie.toml:5: tls.challenges: [] is empty, but tls.mode = "acme" needs a way to prove the names are yours; write ["http-01", "tls-alpn-01"]`},
		{"acme dns-01", acmeWith(`challenges = ["dns-01"]`),
			`routie.toml:5: tls.challenges: ["dns-01"] has "dns-01", which needs a DNS provider's API, and routied has none; write "http-01" or "tls-alpn-01"`},
		{"acme unknown challenge", acmeWith(`challenges = ["http01"]`),
			`routie.toml:5: tls.challenges: ["http01"] has "http01", which is not a challenge type; write "http-01" or "tls-alpn-01"`},
		{"acme http-01 without the http listener", "[listen]\nhttp = \"\"\n" + acmeWith(`challenges = ["http-01"]`),
			`routie.toml:7: tls.challenges: ["http-01"] has "http-01", which is answered on listen.http, but listen.http is ""; set listen.http = ":80", or remove "http-01"`},
		{"acme without the https listener", "[listen]\nhttps = \"\"\n" + acmeWith(`challenges = ["http-01"]`),
			`routie.toml:2: listen.https: "" turns HTTPS off, but tls.mode = "acme" gets certificates for it; set listen.https, such as ":443"`},
		{"acme eab key ID without HMAC", acmeWith(`eab_kid = "kid-1"`),
			`routie.toml: tls.eab_hmac: is not set, but tls.eab_kid is set; the CA gives both: write the HMAC key it gave with the key ID`},
		{"acme eab HMAC without key ID", acmeWith(`eab_hmac = "c2VjcmV0"`),
			`routie.toml: tls.eab_kid: is not set, but tls.eab_hmac is set; the CA gives both: write the key ID it gave with the HMAC key`},
		{"acme eab HMAC that is not base64url", acmeWith("eab_kid = \"kid-1\"\neab_hmac = \"not base64!\""),
			`routie.toml:6: tls.eab_hmac: is not base64url; paste the HMAC key exactly as the CA shows it`},
		{"cert_file that acme ignores", acmeWith(`cert_file = "/etc/ssl/cert.pem"`),
			`routie.toml:5: tls.cert_file: "/etc/ssl/cert.pem" is set, but tls.mode = "acme" does not use it; set tls.mode = "files" to serve it, or remove tls.cert_file`},

		// upstream
		{"empty upstream host", "[upstream]\nhost = \"\"\n",
			`routie.toml:2: upstream.host: "" is empty; write the host the app listens on, such as "127.0.0.1"`},
		{"initial port zero", "[upstream]\ninitial = 0\n",
			`routie.toml:2: upstream.initial: 0 is not a port; write a port from 1 to 65535, such as 8080`},
		{"initial port too high", "[upstream]\ninitial = 65536\n",
			`routie.toml:2: upstream.initial: 65536 is not a port; write a port from 1 to 65535, such as 8080`},

		// health
		{"relative health path", "[health]\npath = \"healthz\"\n",
			`routie.toml:2: health.path: "healthz" does not start with "/"; write "/healthz"`},
		{"empty health path", "[health]\npath = \"\"\n",
			`routie.toml:2: health.path: "" is empty; write the path to probe, such as "/actuator/health"`},
		{"zero interval", "[health]\ninterval = \"0s\"\n",
			`routie.toml:2: health.interval: "0s" is not more than zero; write a duration such as "1s"`},
		{"negative timeout", "[health]\ntimeout = \"-2s\"\n",
			`routie.toml:2: health.timeout: "-2s" is not more than zero; write a duration such as "2s"`},
		{"zero wait", "[health]\nwait = \"0ms\"\n",
			`routie.toml:2: health.wait: "0ms" is not more than zero; write a duration such as "2m"`},
		{"zero passes", "[health]\npasses = 0\n",
			`routie.toml:2: health.passes: 0 is less than 1; write how many probes in a row must pass, such as 3`},

		// drain
		{"zero drain timeout", "[drain]\ntimeout = \"0s\"\n",
			`routie.toml:2: drain.timeout: "0s" is not more than zero; write a duration such as "30s"`},
		{"negative stream grace", "[drain]\nstreams = \"-1m\"\n",
			`routie.toml:2: drain.streams: "-1m" is negative; write "0s" to close streams at once, or a grace period such as "5m"`},

		// limits
		{"negative connection cap", "[limits]\nmax_conns_per_client = -1\n",
			`routie.toml:2: limits.max_conns_per_client: -1 is negative; write 0 for no cap, or a number such as 256`},
		{"zero header timeout", "[limits]\nheader_timeout = \"0s\"\n",
			`routie.toml:2: limits.header_timeout: "0s" is not more than zero; write a duration such as "10s"`},
		{"negative idle timeout", "[limits]\nidle_timeout = \"-75s\"\n",
			`routie.toml:2: limits.idle_timeout: "-75s" is not more than zero; write a duration such as "1m15s"`},

		// control
		{"empty control socket", "[control]\nsocket = \"\"\n",
			`routie.toml:2: control.socket: "" is empty; write the socket's path, such as "/run/routie/control.sock"`},
		{"mode with the sticky bit", "[control]\nmode = \"01770\"\n",
			`routie.toml:2: control.mode: "01770" has bits outside 0777 (setuid, setgid, sticky or a file type); write permission bits only, such as "0660"`},

		// state
		{"empty state dir", "[state]\ndir = \"\"\n",
			`routie.toml:2: state.dir: "" is empty; write a directory routied can write to, such as "/var/lib/routie"`},

		// log
		{"upper-case log level", "[log]\nlevel = \"INFO\"\n",
			`routie.toml:2: log.level: "INFO" is not a log level; write "info"`},
		{"log level spelt out", "[log]\nlevel = \"warning\"\n",
			`routie.toml:2: log.level: "warning" is not a log level; write "warn"`},
		{"unknown log level", "[log]\nlevel = \"trace\"\n",
			`routie.toml:2: log.level: "trace" is not a log level; write "debug", "info", "warn" or "error"`},
		{"unknown log format", "[log]\nformat = \"yaml\"\n",
			`routie.toml:2: log.format: "yaml" is not a log format; write "auto", "text" or "json"`},

		// metrics
		{"metrics on a bare port", "[metrics]\nlisten = \"9180\"\n",
			`routie.toml:2: metrics.listen: "9180" is not host:port; write ":9180", or "" to turn this listener off`},
		{"metrics on a bare port number", "[metrics]\nlisten = 9180\n",
			`routie.toml:2: metrics.listen: 9180 is not an address; write ":9180"`},
		{"metrics on the https port", "[listen]\nhttps = \"127.0.0.1:8443\"\n[metrics]\nlisten = \"127.0.0.1:8443\"\n",
			`routie.toml:4: metrics.listen: "127.0.0.1:8443" is listen.https's address too; give the metrics their own port, such as "127.0.0.1:9180"`},
	})
}

func TestValidValuesAtTheEdgesAreAccepted(t *testing.T) {
	for name, content := range map[string]string{
		"https only":              "[listen]\nhttp = \"\"\n",
		"http only with tls off":  "[listen]\nhttps = \"\"\n[tls]\nmode = \"off\"\n",
		"ports 1 and 65535":       "[listen]\nhttp = \":1\"\nhttps = \"[::1]:65535\"\n[upstream]\ninitial = 65535\n",
		"files with both files":   "[tls]\nmode = \"files\"\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n",
		"streams closed at once":  "[drain]\nstreams = \"0s\"\n",
		"mode without leading 0":  "[control]\nmode = \"600\"\n",
		"mode with 0o":            "[control]\nmode = \"0o600\"\n",
		"mode that shuts all out": "[control]\nmode = \"0000\"\n",
		"one pass":                "[health]\npasses = 1\n",
		"acme":                    acmeWith(""),
		"acme for an IP address":  "[tls]\nmode = \"acme\"\ndomains = [\"203.0.113.7\", \"2001:db8::7\"]\nemail = \"ops@routie.dev\"\n",
		"acme with tls-alpn-01 only and no http listener": "[listen]\nhttp = \"\"\n" + acmeWith(`challenges = ["tls-alpn-01"]`),
		"acme with a private CA and EAB":                  acmeWith("ca = \"https://ca.internal:9000/acme/acme/directory\"\nca_root = \"/etc/routie/ca.pem\"\neab_kid = \"kid-1\"\neab_hmac = \"c2VjcmV0LWtleS1mcm9tLXRoZS1jYQ\""),
		"acme keys kept while self-signed":                "[tls]\nmode = \"self-signed\"\nemail = \"ops@routie.dev\"\nca = \"https://ca.internal/dir\"\nchallenges = []\n",
		"hsts of a year":                                  "[tls]\nhsts = \"8760h\"\n",
		"no limits":                                       "[limits]\nmax_body = \"0\"\nmax_conns_per_client = 0\n",
		"metrics off":                                     "[metrics]\nlisten = \"\"\n",
		"metrics on every interface":                      "[metrics]\nlisten = \":9180\"\n",
	} {
		if _, err := Parse("routie.toml", []byte(content)); err != nil {
			t.Errorf("%s: Parse refused\n%s\nwith: %v", name, content, err)
		}
	}
}

func TestValidateNamesPathButNoLineForAConfigBuiltInCode(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	c := Default()
	c.Path = "/etc/routie/routie.toml"
	c.Health.Passes = 0
	c.Control.Mode = 0o4660
	err := c.Validate()
	want := `/etc/routie/routie.toml: health.passes: 0 is less than 1; write how many probes in a row must pass, such as 3
/etc/routie/routie.toml: control.mode: "04660" has bits outside 0777 (setuid, setgid, sticky or a file type); write permission bits only, such as "0660"`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 0 || e.Key != "health.passes" {
		t.Errorf("Validate() first error = %+v, want health.passes without a line", e)
	}

	c = Default()
	c.Log.Level = "verbose"
	if err, want := c.Validate(), `log.level: "verbose" is not a log level; write "debug", "info", "warn" or "error"`; err == nil || err.Error() != want {
		t.Errorf("Validate() without a path = %v, want %s", err, want)
	}
}

// acmeWith returns a valid [tls] table for mode "acme", lines 1-4, with line appended as line
// 5 (or as the replacement of a key it sets: domains on line 3, email on line 4).
func acmeWith(line string) string {
	lines := []string{"[tls]", `mode = "acme"`, `domains = ["routie.dev"]`, `email = "ops@routie.dev"`}
	key, _, _ := strings.Cut(line, " =")
	switch key {
	case "domains":
		lines[2] = line
	case "email":
		lines[3] = line
	default:
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestDeploySettingsAreChecked(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"a port out of range", "[upstream]\nports = [8080, 80810]\n",
			`routie.toml:2: upstream.ports: 80810 is not a port; write ports from 1 to 65535, such as [8080, 8081]`},
		{"sustain longer than the window", "[deploy]\nmonitor = \"1m\"\nsustain = \"2m\"\n",
			`routie.toml:3: deploy.sustain: "2m" is longer than deploy.monitor (1m), so no window could ever be judged; write a duration shorter than the monitor window, such as "30s"`},
		{"a percentage instead of a share", "[deploy]\nmax_error_rate = 5\n",
			`routie.toml:2: deploy.max_error_rate: 5 is not a share between 0 and 1; write one such as 0.02 (2% of requests)`},
		{"a ratio that blames a release as fast as the old", "[deploy]\nmax_latency_ratio = 1\n",
			`routie.toml:2: deploy.max_latency_ratio: 1 would roll back a release as fast as the old one; write a ratio above 1 such as 2.0, or 0 to ignore latency`},
		{"a negative latency floor", "[deploy]\nlatency_floor = \"-5ms\"\n",
			`routie.toml:2: deploy.latency_floor: "-5ms" is negative; write the p95 below which a release is never called slow, such as "20ms", or "0s" for none`},
		{"a quoted number", "[deploy]\nmax_error_rate = \"0.05\"\n",
			`routie.toml:2: deploy.max_error_rate: "0.05" is a string, not a number; write it without quotes, such as 0.02`},
	})
}
