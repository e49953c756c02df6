package conf

import (
	"errors"
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
		{"unknown tls mode", "[tls]\nmode = \"acme\"\n",
			`routie.toml:2: tls.mode: "acme" is not a tls mode; write "self-signed", "files" or "off"`},
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
			`routie.toml:2: tls.mode: "off" leaves no certificate for listen.https = ":443" (the default); set listen.https = "" or pick a tls mode ("self-signed" or "files")`},
		{"https listener set with tls off", "[listen]\nhttps = \":8443\"\n[tls]\nmode = \"off\"\n",
			`routie.toml:4: tls.mode: "off" leaves no certificate for listen.https = ":8443"; set listen.https = "" or pick a tls mode ("self-signed" or "files")`},
		{"cert_file that the mode ignores", "[tls]\ncert_file = \"/etc/ssl/cert.pem\"\nkey_file = \"/etc/ssl/key.pem\"\n", `routie.toml:2: tls.cert_file: "/etc/ssl/cert.pem" is set, but tls.mode = "self-signed" does not use it; set tls.mode = "files" to serve it, or remove tls.cert_file
routie.toml:3: tls.key_file: "/etc/ssl/key.pem" is set, but tls.mode = "self-signed" does not use it; set tls.mode = "files" to serve it, or remove tls.key_file`},

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
