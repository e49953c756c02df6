package conf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// errorCase is one golden case: a file's content and the exact error text Parse returns
// for it, as the operator sees it. The file is always named routie.toml.
type errorCase struct {
	name string
	toml string
	want string
}

func runErrorCases(t *testing.T, cases []errorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("routie.toml", []byte(tc.toml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s\ngot config %+v", tc.toml, c)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Parse error for:\n%s\ngot:\n%s\nwant:\n%s", tc.toml, got, tc.want)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("Parse returned a config with its error: %+v", c)
			}
		})
	}
}

func TestUnknownKeyIsRefusedWithSuggestion(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"typo in a key", "[health]\nintervall = \"1s\"\n",
			`routie.toml:2: health.intervall: unknown key; did you mean health.interval?`},
		{"typo in a table", "\n[helth]\ninterval = \"1s\"\n",
			`routie.toml:2: helth: unknown table; did you mean [health]?`},
		{"typo in a dotted key's table", "helth.interval = \"1s\"\n",
			`routie.toml:1: helth.interval: unknown key; did you mean health.interval?`},
		{"key in an inline table", "health = { intervall = \"1s\" }\n",
			`routie.toml:1: health.intervall: unknown key; did you mean health.interval?`},
		{"abbreviated key", "[tls]\ncert = \"/etc/ssl/a.pem\"\n",
			`routie.toml:2: tls.cert: unknown key; did you mean tls.cert_file?`},
		{"longer table name", "[logging]\nlevel = \"info\"\n",
			`routie.toml:1: logging: unknown table; did you mean [log]?`},
		{"key under the wrong table", "[listen]\ndomains = [\"example.com\"]\n",
			`routie.toml:2: listen.domains: unknown key; did you mean tls.domains?`},
		{"key that two tables have", "[listen]\ntimeout = \"1s\"\n",
			`routie.toml:2: listen.timeout: unknown key; did you mean health.timeout or drain.timeout?`},
		{"key above every table", "http = \":80\"\n",
			`routie.toml:1: http: unknown key; did you mean listen.http? keys go below their [table]`},
	})
}

func TestUnknownKeyWithoutALikelyMatchListsTheValidOnes(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"unknown key", "[health]\nmethod = \"HEAD\"\n",
			`routie.toml:2: health.method: unknown key; [health] has path, interval, timeout, passes, wait, expect_body`},
		{"unknown top-level key", "workers = 4\n",
			`routie.toml:1: workers: unknown key; the tables are [listen], [tls], [upstream], [health], [drain], [limits], [control], [state], [log], [metrics], [deploy]`},
		{"unknown table", "[gzip]\nlevel = 5\n",
			`routie.toml:1: gzip: unknown table; the tables are [listen], [tls], [upstream], [health], [drain], [limits], [control], [state], [log], [metrics], [deploy]`},
		{"sub-table", "[health.probe]\npath = \"/\"\n",
			`routie.toml:1: health.probe: unknown table; [health] has no sub-tables, its keys are path, interval, timeout, passes, wait, expect_body`},
		// A port is not a host: "port" must not be offered "host" just for sharing two letters.
		{"no wild guess", "[upstream]\nadress = \"10.0.0.5\"\n",
			`routie.toml:2: upstream.adress: unknown key; [upstream] has host, initial, ports`},
		{"a plural", "[upstream]\nport = 8081\n",
			`routie.toml:2: upstream.port: unknown key; did you mean upstream.ports?`},
	})
}

func TestBadDurationIsRefusedWithTheFix(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"number in a string", "\n\n[health]\ninterval = \"5\"\n",
			`routie.toml:4: health.interval: "5" is not a duration; write "5s"`},
		{"bare number", "[health]\ninterval = 5\n",
			`routie.toml:2: health.interval: 5 is not a duration; write "5s"`},
		{"bare fraction", "[health]\ntimeout = 1.5\n",
			`routie.toml:2: health.timeout: 1.5 is not a duration; write "1.5s"`},
		{"zero without a unit", "[drain]\nstreams = \"0\"\n",
			`routie.toml:2: drain.streams: "0" is not a duration; write "0s"`},
		{"unknown unit", "[health]\nwait = \"2 minutes\"\n",
			`routie.toml:2: health.wait: "2 minutes" is not a duration; write a number and a unit, such as "1s", "500ms" or "2m"`},
		{"not a scalar", "[drain]\ntimeout = [30]\n",
			`routie.toml:2: drain.timeout: [30] is not a duration; write a quoted number and unit, such as "1s"`},
	})
}

func TestBadSizeIsRefusedWithTheExactSizeToWrite(t *testing.T) {
	const binary = " (binary units: 1MiB is 1048576 bytes)"
	runErrorCases(t, []errorCase{
		{"nginx's suffix", "[limits]\nmax_body = \"10m\"\n",
			`routie.toml:2: limits.max_body: "10m" is not a size; write "10MiB"` + binary},
		{"decimal-looking unit", "[limits]\nmax_body = \"512KB\"\n",
			`routie.toml:2: limits.max_body: "512KB" is not a size; write "512KiB"` + binary},
		{"lower-case unit", "[limits]\nmax_body = \"1gib\"\n",
			`routie.toml:2: limits.max_body: "1gib" is not a size; write "1GiB"` + binary},
		{"fraction of a unit", "[limits]\nmax_body = \"1.5GiB\"\n",
			`routie.toml:2: limits.max_body: "1.5GiB" is not a size; write "1536MiB"` + binary},
		{"number in a string", "[limits]\nmax_body = \"10\"\n",
			`routie.toml:2: limits.max_body: "10" is not a size; write "10MiB"` + binary},
		{"unknown unit", "[limits]\nmax_body = \"10 megabytes\"\n",
			`routie.toml:2: limits.max_body: "10 megabytes" is not a size; write a whole number and a unit, such as "10MiB", "512KiB" or "1GiB", or "0" for no limit`},
		{"negative size", "[limits]\nmax_body = \"-1MiB\"\n",
			`routie.toml:2: limits.max_body: "-1MiB" is not a size; write a whole number and a unit, such as "10MiB", "512KiB" or "1GiB", or "0" for no limit`},
		{"fraction of a byte", "[limits]\nmax_body = \"0.5B\"\n",
			`routie.toml:2: limits.max_body: "0.5B" is not a size; write a whole number and a unit, such as "10MiB", "512KiB" or "1GiB", or "0" for no limit`},
		{"bare bytes", "[limits]\nmax_body = 10485760\n",
			`routie.toml:2: limits.max_body: 10485760 is not a quoted size; write "10MiB" (or "10485760B")`},
		{"bare small number", "[limits]\nmax_body = 10\n",
			`routie.toml:2: limits.max_body: 10 is not a quoted size with a unit; write "10MiB" for mebibytes, or "10B" for bytes`},
		{"bare negative number", "[limits]\nmax_body = -1\n",
			`routie.toml:2: limits.max_body: -1 is negative; write "0" for no limit, or a size such as "10MiB"`},
		{"list for a size", "[limits]\nmax_body = [\"1MiB\"]\n",
			`routie.toml:2: limits.max_body: ["1MiB"] is not a size; write a quoted number and unit, such as "10MiB"`},
	})
}

func TestSizesAreReadInBinaryUnits(t *testing.T) {
	for in, want := range map[string]int64{
		`"0"`: 0, `0`: 0, `"0B"`: 0, `"1500B"`: 1500, `"512KiB"`: 512 << 10, `"10MiB"`: 10 << 20,
		`"10 MiB"`: 10 << 20, `"2GiB"`: 2 << 30,
	} {
		c, err := Parse("routie.toml", []byte("[limits]\nmax_body = "+in+"\n"))
		if err != nil {
			t.Errorf("max_body = %s: %v", in, err)
			continue
		}
		if c.Limits.MaxBody != want {
			t.Errorf("max_body = %s: %d bytes, want %d", in, c.Limits.MaxBody, want)
		}
	}
}

func TestValueOfTheWrongTypeIsRefusedWithTheFix(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"quoted number", "[upstream]\ninitial = \"8080\"\n",
			`routie.toml:2: upstream.initial: "8080" is a string, not a number; write 8080 without quotes`},
		{"word for a number", "[health]\npasses = \"three\"\n",
			`routie.toml:2: health.passes: "three" is not a whole number; write a number such as 3`},
		{"fraction for a number", "[health]\npasses = 2.5\n",
			`routie.toml:2: health.passes: 2.5 is not a whole number; write a number such as 3`},
		{"quoted bool", "[log]\naccess = \"false\"\n",
			`routie.toml:2: log.access: "false" is a string, not true or false; write false without quotes`},
		{"word for a bool", "[tls]\nredirect = \"yes\"\n",
			`routie.toml:2: tls.redirect: "yes" is not true or false; write true or false`},
		{"number for a bool", "[tls]\nredirect = 1\n",
			`routie.toml:2: tls.redirect: 1 is not true or false; write true or false`},
		{"number for a string", "[state]\ndir = 5\n",
			`routie.toml:2: state.dir: 5 is not a string; write "5"`},
		{"list for a string", "[health]\nexpect_body = [\"UP\"]\n",
			`routie.toml:2: health.expect_body: ["UP"] is not a string; write a quoted string`},
		{"bare port for an address", "[listen]\nhttp = 80\n",
			`routie.toml:2: listen.http: 80 is not an address; write ":80"`},
		{"string for a list", "[tls]\ndomains = \"example.com\"\n",
			`routie.toml:2: tls.domains: "example.com" is not a list; write ["example.com"]`},
		{"number in a list", "[tls]\ndomains = [\"example.com\", 1]\n",
			`routie.toml:2: tls.domains: ["example.com", 1] lists 1, which is not a string; write names in quotes, such as ["localhost"]`},
		{"unquoted mode", "[control]\nmode = 660\n",
			`routie.toml:2: control.mode: 660 is not a quoted mode; write "0660"`},
		{"unquoted octal mode", "[control]\nmode = 0o640\n",
			`routie.toml:2: control.mode: 0o640 is not a quoted mode; write "0640"`},
		{"symbolic mode", "[control]\nmode = \"rw-rw----\"\n",
			`routie.toml:2: control.mode: "rw-rw----" is not an octal mode; write octal digits, such as "0660"`},
		{"value for a table", "listen = \":80\"\n",
			`routie.toml:1: listen: ":80" is not a table; write [listen] on a line of its own, with its keys below it`},
		{"array of tables", "[[health]]\npath = \"/\"\n",
			`routie.toml:1: health: [[health]] is an array of tables; write [health], once`},
	})
}

func TestInvalidTOMLIsRefusedWithItsLine(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"missing equals", "[health]\ninterval \"1s\"\n",
			`routie.toml:2: not valid TOML: expected '=' after key; the line reads: interval "1s"`},
		{"unquoted string", "[upstream]\nhost = localhost\n",
			`routie.toml:2: not valid TOML: unexpected character U+006C 'l' at start of value; strings need quotes; write host = "localhost"`},
		{"unquoted address", "[listen]\nhttp = :80\n",
			`routie.toml:2: not valid TOML: unexpected character U+003A ':' at start of value; strings need quotes; write http = ":80"`},
		{"unquoted host and port", "[listen]\nhttps = 127.0.0.1:443  # local only\n",
			`routie.toml:2: not valid TOML: expected newline but got U+002E '.'; strings need quotes; write https = "127.0.0.1:443"`},
		{"unquoted duration", "[health]\ninterval = 5s\n",
			`routie.toml:2: not valid TOML: strings must be quoted; write interval = "5s"`},
		{"mode with a leading zero", "[control]\nmode = 0660\n",
			`routie.toml:2: not valid TOML: integers cannot have leading zeroes; strings need quotes; write mode = "0660"`},
		{"unquoted list item", "[tls]\ndomains = [localhost]\n",
			`routie.toml:2: not valid TOML: unexpected character U+006C 'l' at start of value; the line reads: domains = [localhost]`},
		{"table twice", "[health]\npasses = 1\n\n[health]\npath = \"/\"\n",
			`routie.toml:4: not valid TOML: table health already exists; write each table and each key once; the line reads: [health]`},
		{"key twice", "[health]\npasses = 1\npasses = 2\n",
			`routie.toml:3: not valid TOML: key passes is already defined; write each table and each key once; the line reads: passes = 2`},
	})
}

func TestEveryProblemIsReportedOnePerLineInFileOrder(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"unknown, wrong type and out of range together", `
[tls]
mode = "files"

[health]
passes = 0
intervall = "1s"
timeout = 2

[lisen]
http = ":80"
`, strings.Join([]string{
			`routie.toml:6: health.passes: 0 is less than 1; write how many probes in a row must pass, such as 3`,
			`routie.toml:7: health.intervall: unknown key; did you mean health.interval?`,
			`routie.toml:8: health.timeout: 2 is not a duration; write "2s"`,
			`routie.toml:10: lisen: unknown table; did you mean [listen]?`,
			`routie.toml: tls.cert_file: is not set, but tls.mode = "files" needs it; write the path of the PEM certificate (chain)`,
			`routie.toml: tls.key_file: is not set, but tls.mode = "files" needs it; write the path of the PEM private key`,
		}, "\n")},
	})
}

func TestConfigErrorNamesFileLineAndKey(t *testing.T) {
	_, err := Parse("/etc/routie/routie.toml", []byte("[health]\n\ninterval = \"5\"\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse error %v (%T) is not an *Error", err, err)
	}
	want := Error{File: "/etc/routie/routie.toml", Line: 3, Key: "health.interval", Msg: `"5" is not a duration; write "5s"`}
	if *e != want {
		t.Errorf("Parse error = %+v, want %+v", *e, want)
	}
}

func TestEmptyFileIsTheDefault(t *testing.T) {
	for _, content := range []string{"", "\n", "# nothing set\n", "[health]\n[log]\n"} {
		c, err := Parse("routie.toml", []byte(content))
		if err != nil {
			t.Fatalf("Parse(%q): %v", content, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want Default() %+v", content, c, Default())
		}
	}
}

func TestFileOverlaysOnlyTheKeysItSets(t *testing.T) {
	c, err := Parse("routie.toml", []byte(`
[health]
passes = 5
interval = "250ms"

[tls]
domains = ["example.com", "www.example.com"]

[control]
mode = "0600"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Health.Passes = 5
	want.Health.Interval = 250 * time.Millisecond
	want.TLS.Domains = []string{"example.com", "www.example.com"} // replaces ["localhost"]
	want.Control.Mode = 0o600
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", c, want)
	}
}

func TestDottedKeysAndInlineTablesAreTheSameAsTables(t *testing.T) {
	for _, content := range []string{
		"[health]\npasses = 5\n",
		"health.passes = 5\n",
		"health = { passes = 5 }\n",
	} {
		c, err := Parse("routie.toml", []byte(content))
		if err != nil {
			t.Fatalf("Parse(%q): %v", content, err)
		}
		if c.Health.Passes != 5 {
			t.Errorf("Parse(%q): health.passes = %d, want 5", content, c.Health.Passes)
		}
	}
}

func TestLoadSetsPathAndWrapsReadErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routie.toml")
	if err := os.WriteFile(path, []byte("[health]\npasses = 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path || c.Health.Passes != 4 {
		t.Errorf("Load: Path = %q, passes = %d; want %q, 4", c.Path, c.Health.Passes, path)
	}

	_, err = Load(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want an error wrapping fs.ErrNotExist", err)
	}
}

func TestLoadErrorsNameThePathGiven(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routie.toml")
	if err := os.WriteFile(path, []byte("[health]\ninterval = \"5\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + `:2: health.interval: "5" is not a duration; write "5s"`; err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %s", err, want)
	}
}

func TestErrorTextLeavesOutWhatIsUnknown(t *testing.T) {
	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{File: "routie.toml", Line: 3, Key: "health.passes", Msg: "m"}, "routie.toml:3: health.passes: m"},
		{Error{File: "routie.toml", Key: "health.passes", Msg: "m"}, "routie.toml: health.passes: m"},
		{Error{File: "routie.toml", Line: 3, Msg: "m"}, "routie.toml:3: m"},
		{Error{Line: 3, Key: "health.passes", Msg: "m"}, "line 3: health.passes: m"},
		{Error{Key: "health.passes", Msg: "m"}, "health.passes: m"},
		{Error{Msg: "m"}, "m"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestUnknownMessageNeverIndexesPastTheKey(t *testing.T) {
	if got := unknownMsg([]string{"health"}, false); !strings.Contains(got, "[health] is a table") {
		t.Errorf("unknownMsg([health]) = %q", got)
	}
}
