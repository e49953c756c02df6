package conf

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// everyFieldChanged returns a valid Config in which every field differs from Default, with
// strings that need escaping, so a field that Encode or Parse forgets cannot round-trip.
func everyFieldChanged() Config {
	return Config{
		Listen: Listen{HTTP: "127.0.0.1:8080", HTTPS: "[::1]:8443"},
		TLS: TLS{
			Mode:       TLSFiles,
			Domains:    []string{"example.com", "www.example.com"},
			Redirect:   false,
			CertFile:   `C:\certs\"quoted" cert.pem`,
			KeyFile:    "/etc/ssl/ключ.pem",
			Email:      "ops+\"tls\"@routie.dev",
			CA:         LetsEncryptStaging,
			CARoot:     "/etc/routie/private ca.pem",
			Storage:    "/srv/acme",
			Challenges: []string{ChallengeTLSALPN01},
			EABKeyID:   "kid-1",
			EABHMAC:    "c2VjcmV0",
			HSTS:       365 * 24 * time.Hour,
		},
		Upstream: Upstream{Host: "app.internal", Initial: 9090, Ports: []int{9090, 9091, 9092}},
		Health: Health{
			Path:       "/healthz?full=1",
			Interval:   250 * time.Millisecond,
			Timeout:    1500 * time.Millisecond,
			Passes:     1,
			Wait:       90 * time.Minute,
			ExpectBody: "\"status\":\t\"UP\"\n\x01\x7f",
		},
		Drain:   Drain{Timeout: time.Hour + time.Second, Streams: 0},
		Limits:  Limits{MaxBody: 1536 << 10, MaxConnsPerClient: 0, HeaderTimeout: 2500 * time.Millisecond, IdleTimeout: time.Hour},
		Control: Control{Socket: "var/control.sock", Mode: 0o600},
		State:   State{Dir: "var/state"},
		Log:     Log{Level: "debug", Format: "json", Access: false},
		Metrics: Metrics{Listen: "[::1]:9100"},
		Deploy: Deploy{
			Start: "systemctl restart app@{port}", Stop: "systemctl stop app@{port}",
			StartTimeout: 90 * time.Second, Monitor: 10 * time.Minute, Sustain: 45 * time.Second,
			MinRequests: 200, MaxErrorRate: 0.005, MaxLatencyRatio: 1.5, LatencyFloor: 75 * time.Millisecond,
		},
	}
}

func TestEncodeRoundTripsToAnEqualConfig(t *testing.T) {
	dev, err := Load("dev.toml")
	if err != nil {
		t.Fatal(err)
	}
	offConfig := Default()
	offConfig.Listen.HTTPS = ""
	offConfig.TLS = TLS{Mode: TLSOff}

	for name, c := range map[string]Config{
		"default":             Default(),
		"dev.toml":            dev,
		"every field changed": everyFieldChanged(),
		"tls off, no domains": offConfig,
	} {
		t.Run(name, func(t *testing.T) {
			encoded := c.Encode()
			got, err := Parse("encoded.toml", encoded)
			if err != nil {
				t.Fatalf("Parse(Encode()) = %v; encoded:\n%s", err, encoded)
			}
			c.Path = "" // Parse never sets it
			if !reflect.DeepEqual(got, c) {
				t.Errorf("Parse(Encode()) =\n%+v\nwant\n%+v\nencoded:\n%s", got, c, encoded)
			}
		})
	}
}

func TestEveryFieldChangedReallyChangesEveryField(t *testing.T) {
	// Keeps TestEncodeRoundTripsToAnEqualConfig honest when a field is added to Config.
	for _, f := range sameLeaves(reflect.ValueOf(everyFieldChanged()), reflect.ValueOf(Default()), "") {
		if f != "Path" {
			t.Errorf("everyFieldChanged leaves %s at its default; change it too", f)
		}
	}
}

// sameLeaves lists the leaf fields (by Go path) that are equal in a and b.
func sameLeaves(a, b reflect.Value, prefix string) []string {
	if a.Kind() != reflect.Struct {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return []string{strings.TrimPrefix(prefix, ".")}
		}
		return nil
	}
	var same []string
	for i := range a.NumField() {
		same = append(same, sameLeaves(a.Field(i), b.Field(i), prefix+"."+a.Type().Field(i).Name)...)
	}
	return same
}

func TestEncodeWritesEveryKey(t *testing.T) {
	written := slices.Sorted(maps.Keys(withoutTables(scanPositions(Default().Encode()))))
	want := slices.Sorted(slices.Values(schemaKeys()))
	if !slices.Equal(written, want) {
		t.Errorf("Encode writes keys\n%v\nwant\n%v", written, want)
	}
}

func TestSchemaHasAKeyForEveryConfigField(t *testing.T) {
	var fields int
	config := reflect.TypeFor[Config]()
	for i := range config.NumField() {
		if table := config.Field(i).Type; table.Kind() == reflect.Struct {
			fields += table.NumField() // Config.Path, not a struct, is not a key
		}
	}
	if keys := schemaKeys(); len(keys) != fields {
		t.Errorf("the file has %d keys %v, but Config has %d fields besides Path", len(keys), keys, fields)
	}
}

func TestEncodeWritesDurationsAndModeAsOperatorsDo(t *testing.T) {
	c := Default()
	c.Drain.Timeout = time.Hour
	c.Health.Timeout = 1500 * time.Millisecond
	c.Control.Mode = 0o640
	out := string(c.Encode())
	for _, line := range []string{
		`interval = "1s"`,
		`timeout = "1.5s"`,
		`wait = "2m"`,
		`timeout = "1h"`,
		`streams = "5m"`,
		`mode = "0640"`,
		`domains = ["localhost"]`,
		`initial = 8080`,
		`access = true`,
		`challenges = ["http-01", "tls-alpn-01"]`,
		`hsts = "0s"`,
		`max_body = "10MiB"`,
		`max_conns_per_client = 256`,
		`idle_timeout = "1m15s"`,
		`listen = "127.0.0.1:9180"`,
	} {
		if !strings.Contains(out, "\n"+line+"\n") {
			t.Errorf("Encode output lacks the line %s:\n%s", line, out)
		}
	}
}

func TestEncodeNamesTheFileItWasReadFrom(t *testing.T) {
	c := Default()
	c.Path = "/etc/routie/routie.toml"
	if out := string(c.Encode()); !strings.Contains(out, "# Read from /etc/routie/routie.toml.\n") {
		t.Errorf("Encode output does not name its file:\n%s", out)
	}
}

// withoutTables drops the [table] headers, leaving the keys.
func withoutTables(pos positions) positions {
	maps.DeleteFunc(pos, func(_ string, w written) bool { return w.table })
	return pos
}

func TestRedactedHidesTheEABKey(t *testing.T) {
	c := everyFieldChanged()
	shown := string(c.Redacted().Encode())
	if strings.Contains(shown, c.TLS.EABHMAC) {
		t.Errorf("the shown configuration holds the EAB HMAC key %q:\n%s", c.TLS.EABHMAC, shown)
	}
	if !strings.Contains(shown, `eab_hmac = "(set; not shown)"`) || !strings.Contains(shown, `eab_kid = "kid-1"`) {
		t.Errorf("the shown configuration does not say the key is set:\n%s", shown)
	}
	if c.TLS.EABHMAC != "c2VjcmV0" {
		t.Error("Redacted changed the config it was called on")
	}
}
