package conf

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// Load reads and parses the config file at path; see Parse. The returned Config's Path is path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return Config{}, err
	}
	c.Path = path
	return c, nil
}

// Parse parses a config file's content. name is used only in error messages; Path is left "".
//
// Parsing starts from Default() and overlays each key the file sets, so an absent key keeps
// its default and an empty file is the default config; a list (tls.domains) replaces the
// default list rather than adding to it. Parsing is strict: an unknown key or table, a value of
// the wrong type, or a value that breaks a rule (see Validate) is refused, because a typo that
// silently keeps a default is found in production, not at startup. Every problem in the file
// is reported at once, each as an *Error; the returned Config is then the zero Config.
func Parse(name string, data []byte) (Config, error) {
	s := &source{name: name, reported: map[string]bool{}}
	var f file
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&f)

	var unknown *toml.StrictMissingError
	var invalid *toml.DecodeError
	switch {
	case err == nil:
		s.pos = scanPositions(data)
	case errors.As(err, &unknown):
		// go-toml decoded everything else, so the known keys are still checked below and
		// the operator sees every problem in one go.
		s.pos = scanPositions(data)
		for i := range unknown.Errors {
			s.unknown(&unknown.Errors[i])
		}
	case errors.As(err, &invalid):
		// A syntax error, or a table written as a value: go-toml stopped there, so
		// nothing after it can be checked.
		return Config{}, joinErrors([]*Error{s.invalid(data, invalid)})
	default:
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}

	c := Default()
	s.overlay(&f, &c)
	s.validate(c)
	if err := joinErrors(s.errs); err != nil {
		return Config{}, err
	}
	return c, nil
}

// source is one file being parsed or one Config being validated: the name errors start with,
// where each key is written (nil for a Config built in code) and the problems found so far.
type source struct {
	name string
	pos  positions
	errs []*Error
	// reported holds the keys already reported, so that a value refused for its type is not
	// refused again by a rule that then sees its default.
	reported map[string]bool
}

// fail reports a problem with key, at the line the key is written on (or its table's line,
// for a problem with a whole table).
func (s *source) fail(key, format string, args ...any) {
	if s.reported[key] {
		return
	}
	s.reported[key] = true
	s.errs = append(s.errs, &Error{File: s.name, Line: s.pos[key].line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// shown is key's value as the operator wrote it ("0o660", `"5"`), or formatted when the file
// does not spell it on one line (or does not set it at all).
func (s *source) shown(key, formatted string) string {
	if w, ok := s.pos[key]; ok && w.raw != "" {
		return w.raw
	}
	return formatted
}

// unknown reports a key or table the schema does not have.
func (s *source) unknown(e *toml.DecodeError) {
	line, col := e.Position()
	// Inside an inline table go-toml's Key() lacks the table ("bar" for health = { bar = 1 }),
	// so prefer the full key written at the error's position.
	key, ok := s.pos.at(line, col)
	parts := strings.Split(key, ".")
	if !ok {
		parts = e.Key()
		key = strings.Join(parts, ".")
	}
	s.reported[key] = true
	s.errs = append(s.errs, &Error{File: s.name, Line: line, Key: key, Msg: unknownMsg(parts, s.pos[key].table)})
}

// invalid turns go-toml's error for a document it could not decode into one for the operator.
func (s *source) invalid(data []byte, e *toml.DecodeError) *Error {
	line, _ := e.Position()
	msg := strings.TrimPrefix(e.Error(), "toml: ")
	key := strings.Join(e.Key(), ".")
	isTable := slices.ContainsFunc(schema(), func(t table) bool { return t.name == key })
	// go-toml words a value where a table belongs as "cannot decode/store ...".
	if isTable && strings.HasPrefix(msg, "cannot") {
		w := scanPositions(data)[key]
		switch {
		case w.arrayTable:
			return &Error{File: s.name, Line: line, Key: key,
				Msg: fmt.Sprintf("[[%s]] is an array of tables; write [%s], once", key, key)}
		case w.raw != "":
			return &Error{File: s.name, Line: line, Key: key,
				Msg: fmt.Sprintf("%s is not a table; write [%s] on a line of its own, with its keys below it", w.raw, key)}
		}
	}
	if strings.Contains(msg, "already") {
		// "table health already exists", "key passes is already defined"
		msg += "; write each table and each key once"
	}
	if lines := strings.Split(string(data), "\n"); line >= 1 && line <= len(lines) {
		text := strings.TrimSpace(lines[line-1])
		if fix, ok := quoteFix(msg, text); ok {
			if !strings.Contains(msg, "quoted") {
				msg += "; strings need quotes"
			}
			return &Error{File: s.name, Line: line, Msg: "not valid TOML: " + msg + "; write " + fix}
		}
		msg += "; the line reads: " + text
	}
	return &Error{File: s.name, Line: line, Msg: "not valid TOML: " + msg}
}

// quoteFix returns the line with its value quoted when go-toml's complaint is about a value
// left unquoted, as nginx allows: http = :80, http = 127.0.0.1:80, interval = 5s, mode = 0660.
func quoteFix(msg, line string) (string, bool) {
	k, v, ok := strings.Cut(line, "=")
	if i := strings.Index(v, "#"); i >= 0 {
		v = v[:i]
	}
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if !ok || k == "" || v == "" || strings.ContainsAny(v[:1], "\"'[{") {
		return "", false
	}
	unquoted := strings.Contains(msg, "start of value") || strings.Contains(msg, "must be quoted") ||
		strings.Contains(msg, "leading zero") || strings.Contains(msg, "expected newline") && strings.Contains(v, ":")
	if !unquoted {
		return "", false
	}
	return k + " = " + quote(v), true
}

// overlay sets each field of c whose key the file sets.
func (s *source) overlay(f *file, c *Config) {
	s.address("listen.http", f.Listen.HTTP, &c.Listen.HTTP)
	s.address("listen.https", f.Listen.HTTPS, &c.Listen.HTTPS)

	s.str("tls.mode", f.TLS.Mode, &c.TLS.Mode)
	s.names("tls.domains", f.TLS.Domains, &c.TLS.Domains)
	s.str("tls.email", f.TLS.Email, &c.TLS.Email)
	s.str("tls.ca", f.TLS.CA, &c.TLS.CA)
	s.str("tls.ca_root", f.TLS.CARoot, &c.TLS.CARoot)
	s.names("tls.challenges", f.TLS.Challenges, &c.TLS.Challenges)
	s.str("tls.storage", f.TLS.Storage, &c.TLS.Storage)
	s.str("tls.eab_kid", f.TLS.EABKeyID, &c.TLS.EABKeyID)
	s.str("tls.eab_hmac", f.TLS.EABHMAC, &c.TLS.EABHMAC)
	s.str("tls.cert_file", f.TLS.CertFile, &c.TLS.CertFile)
	s.str("tls.key_file", f.TLS.KeyFile, &c.TLS.KeyFile)
	s.boolean("tls.redirect", f.TLS.Redirect, &c.TLS.Redirect)
	s.duration("tls.hsts", f.TLS.HSTS, &c.TLS.HSTS)

	s.str("upstream.host", f.Upstream.Host, &c.Upstream.Host)
	s.integer("upstream.initial", f.Upstream.Initial, &c.Upstream.Initial)
	s.ports("upstream.ports", f.Upstream.Ports, &c.Upstream.Ports)

	s.str("health.path", f.Health.Path, &c.Health.Path)
	s.duration("health.interval", f.Health.Interval, &c.Health.Interval)
	s.duration("health.timeout", f.Health.Timeout, &c.Health.Timeout)
	s.integer("health.passes", f.Health.Passes, &c.Health.Passes)
	s.duration("health.wait", f.Health.Wait, &c.Health.Wait)
	s.str("health.expect_body", f.Health.ExpectBody, &c.Health.ExpectBody)

	s.duration("drain.timeout", f.Drain.Timeout, &c.Drain.Timeout)
	s.duration("drain.streams", f.Drain.Streams, &c.Drain.Streams)

	s.size("limits.max_body", f.Limits.MaxBody, &c.Limits.MaxBody)
	s.integer("limits.max_conns_per_client", f.Limits.MaxConnsPerClient, &c.Limits.MaxConnsPerClient)
	s.duration("limits.header_timeout", f.Limits.HeaderTimeout, &c.Limits.HeaderTimeout)
	s.duration("limits.idle_timeout", f.Limits.IdleTimeout, &c.Limits.IdleTimeout)

	s.str("control.socket", f.Control.Socket, &c.Control.Socket)
	s.mode("control.mode", f.Control.Mode, &c.Control.Mode)

	s.str("state.dir", f.State.Dir, &c.State.Dir)

	s.str("log.level", f.Log.Level, &c.Log.Level)
	s.str("log.format", f.Log.Format, &c.Log.Format)
	s.boolean("log.access", f.Log.Access, &c.Log.Access)

	s.address("metrics.listen", f.Metrics.Listen, &c.Metrics.Listen)

	s.str("deploy.start", f.Deploy.Start, &c.Deploy.Start)
	s.str("deploy.stop", f.Deploy.Stop, &c.Deploy.Stop)
	s.duration("deploy.start_timeout", f.Deploy.StartTimeout, &c.Deploy.StartTimeout)
	s.duration("deploy.monitor", f.Deploy.Monitor, &c.Deploy.Monitor)
	s.duration("deploy.sustain", f.Deploy.Sustain, &c.Deploy.Sustain)
	s.integer("deploy.min_requests", f.Deploy.MinRequests, &c.Deploy.MinRequests)
	s.number("deploy.max_error_rate", f.Deploy.MaxErrorRate, &c.Deploy.MaxErrorRate)
	s.number("deploy.max_latency_ratio", f.Deploy.MaxLatencyRatio, &c.Deploy.MaxLatencyRatio)
	s.duration("deploy.latency_floor", f.Deploy.LatencyFloor, &c.Deploy.LatencyFloor)
}

// ports sets a list of port numbers.
func (s *source) ports(key string, v any, dst *[]int) {
	if v == nil {
		return
	}
	list, ok := v.([]any)
	if !ok {
		s.fail(key, "%s is not a list of ports; write [8080, 8081]", s.shown(key, formatValue(v)))
		return
	}
	out := make([]int, 0, len(list))
	for _, item := range list {
		n, ok := item.(int64)
		if !ok {
			s.fail(key, "%s is not a port; write a list of numbers such as [8080, 8081]", formatValue(item))
			return
		}
		out = append(out, int(n))
	}
	*dst = out
}

// number sets a decimal number; a whole number is fine too.
func (s *source) number(key string, v any, dst *float64) {
	switch v := v.(type) {
	case nil:
	case float64:
		*dst = v
	case int64:
		*dst = float64(v)
	case string:
		s.fail(key, "%s is a string, not a number; write it without quotes, such as %s", s.shown(key, quote(v)), strconv.FormatFloat(*dst, 'g', -1, 64))
	default:
		s.fail(key, "%s is not a number; write a number such as %s", s.shown(key, formatValue(v)), strconv.FormatFloat(*dst, 'g', -1, 64))
	}
}

// The converters below set *dst from a value the file sets (v != nil) and report a value of the
// wrong type. *dst holds the default when they run, which the fixes use as an example.

func (s *source) str(key string, v any, dst *string) {
	switch v := v.(type) {
	case nil:
	case string:
		*dst = v
	case int64, float64, bool:
		shown := s.shown(key, formatValue(v))
		s.fail(key, "%s is not a string; write %s", shown, quote(shown))
	default:
		example := ""
		if *dst != "" {
			example = ", such as " + quote(*dst)
		}
		s.fail(key, "%s is not a string; write a quoted string%s", s.shown(key, formatValue(v)), example)
	}
}

// address is str for a listen address, where a bare port is the likely mistake.
func (s *source) address(key string, v any, dst *string) {
	if n, ok := v.(int64); ok {
		s.fail(key, "%s is not an address; write %s", s.shown(key, formatValue(v)), quote(":"+strconv.FormatInt(n, 10)))
		return
	}
	s.str(key, v, dst)
}

func (s *source) integer(key string, v any, dst *int) {
	switch v := v.(type) {
	case nil:
	case int64:
		if v < math.MinInt || v > math.MaxInt {
			s.fail(key, "%d is too large; write a number such as %d", v, *dst)
			return
		}
		*dst = int(v)
	case string:
		if _, err := strconv.Atoi(v); err == nil {
			s.fail(key, "%s is a string, not a number; write %s without quotes", s.shown(key, quote(v)), v)
			return
		}
		s.fail(key, "%s is not a whole number; write a number such as %d", s.shown(key, quote(v)), *dst)
	default:
		s.fail(key, "%s is not a whole number; write a number such as %d", s.shown(key, formatValue(v)), *dst)
	}
}

func (s *source) boolean(key string, v any, dst *bool) {
	switch v := v.(type) {
	case nil:
	case bool:
		*dst = v
	case string:
		if v == "true" || v == "false" {
			s.fail(key, "%s is a string, not true or false; write %s without quotes", s.shown(key, quote(v)), v)
			return
		}
		s.fail(key, "%s is not true or false; write true or false", s.shown(key, quote(v)))
	default:
		s.fail(key, "%s is not true or false; write true or false", s.shown(key, formatValue(v)))
	}
}

// duration accepts only a quoted Go duration with a unit: a bare 5 could mean seconds or
// milliseconds, and guessing wrong makes a health check or a drain 1000 times too long.
func (s *source) duration(key string, v any, dst *time.Duration) {
	var number string // a unitless number the operator wrote, to suggest it in seconds
	switch v := v.(type) {
	case nil:
		return
	case string:
		if !isDecimal(v) {
			d, err := time.ParseDuration(v)
			if err == nil {
				*dst = d
				return
			}
			s.fail(key, `%s is not a duration; write a number and a unit, such as "1s", "500ms" or "2m"`, s.shown(key, quote(v)))
			return
		}
		number = v
	case int64:
		number = strconv.FormatInt(v, 10)
	case float64:
		number = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		s.fail(key, `%s is not a duration; write a quoted number and unit, such as "1s"`, s.shown(key, formatValue(v)))
		return
	}
	s.fail(key, "%s is not a duration; write %s", s.shown(key, formatValue(v)), quote(number+"s"))
}

// isDecimal reports whether s is an unsigned decimal number without a unit ("5", "1.5").
func isDecimal(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.' && !strings.ContainsRune(s[:i], '.'):
		default:
			return false
		}
	}
	return digits > 0
}

// names reads a list of strings. An empty list sets nil, so that a Config read back from its
// own Encode output is equal to it.
func (s *source) names(key string, v any, dst *[]string) {
	example := formatValue(anyList(*dst))
	switch v := v.(type) {
	case nil:
	case []any:
		var names []string
		for _, e := range v {
			n, ok := e.(string)
			if !ok {
				s.fail(key, "%s lists %s, which is not a string; write names in quotes, such as %s", s.shown(key, formatValue(v)), formatValue(e), example)
				return
			}
			names = append(names, n)
		}
		*dst = names
	case string:
		s.fail(key, "%s is not a list; write [%s]", s.shown(key, quote(v)), quote(v))
	default:
		s.fail(key, "%s is not a list; write names in quotes, such as %s", s.shown(key, formatValue(v)), example)
	}
}

// mode reads a permission mode written as a quoted octal string. An unquoted 0660 is not valid
// TOML and an unquoted 660 is decimal (0o1224), so the file mode is always quoted.
func (s *source) mode(key string, v any, dst *os.FileMode) {
	switch v := v.(type) {
	case nil:
	case string:
		m, ok := parseMode(v)
		if !ok {
			s.fail(key, "%s is not an octal mode; write octal digits, such as %s", s.shown(key, quote(v)), quote(formatMode(*dst)))
			return
		}
		*dst = m // the range is checked with the other rules
	case int64:
		shown := s.shown(key, formatValue(v))
		// The operator wrote octal digits without quotes (660 or 0o660); suggest them quoted.
		if m, ok := parseMode(strings.ReplaceAll(shown, "_", "")); ok {
			s.fail(key, "%s is not a quoted mode; write %s", shown, quote(formatMode(m)))
			return
		}
		s.fail(key, "%s is not a quoted mode; write %s", shown, quote(formatMode(os.FileMode(v))))
	default:
		s.fail(key, "%s is not a mode; write a quoted octal mode, such as %s", s.shown(key, formatValue(v)), quote(formatMode(*dst)))
	}
}

// parseMode reads octal digits, with an optional 0o prefix: "0660", "660", "0o660".
func parseMode(s string) (os.FileMode, bool) {
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	n, err := strconv.ParseUint(digits, 8, 32)
	if err != nil {
		return 0, false
	}
	return os.FileMode(n), true
}

// formatValue formats a decoded TOML value the way it would be written in the file.
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return quote(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, k+" = "+formatValue(v[k]))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	default:
		return fmt.Sprint(v)
	}
}

func anyList(names []string) []any {
	l := make([]any, len(names))
	for i, n := range names {
		l[i] = n
	}
	return l
}

// size reads a byte count written as a quoted number and a binary unit: "10MiB", "512KiB",
// "1GiB", "1500B", or "0". Other spellings are refused with the exact size to write: nginx's
// "10m" means MiB while "10MB" means 10^7 bytes elsewhere, and a bare 10 could be bytes or
// megabytes; a wrong guess refuses every upload, or none.
func (s *source) size(key string, v any, dst *int64) {
	switch v := v.(type) {
	case nil:
	case string:
		n, fix, ok := parseSize(v)
		switch {
		case ok:
			*dst = n
		case fix != "":
			s.fail(key, "%s is not a size; write %s (binary units: 1MiB is 1048576 bytes)", s.shown(key, quote(v)), quote(fix))
		default:
			s.fail(key, `%s is not a size; write a whole number and a unit, such as "10MiB", "512KiB" or "1GiB", or "0" for no limit`, s.shown(key, quote(v)))
		}
	case int64:
		shown := s.shown(key, formatValue(v))
		switch {
		case v == 0:
			*dst = 0 // zero in any unit
		case v < 0:
			s.fail(key, `%s is negative; write "0" for no limit, or a size such as "10MiB"`, shown)
		case v >= 1<<10:
			// Large enough to be meant as bytes: say the same size with a unit.
			s.fail(key, "%s is not a quoted size; write %s (or %s)", shown, quote(formatSize(v)), quote(strconv.FormatInt(v, 10)+"B"))
		default:
			s.fail(key, "%s is not a quoted size with a unit; write %s for mebibytes, or %s for bytes", shown, quote(shown+"MiB"), quote(shown+"B"))
		}
	default:
		s.fail(key, `%s is not a size; write a quoted number and unit, such as "10MiB"`, s.shown(key, formatValue(v)))
	}
}

// sizeUnits are the units a size may be written in, and the spellings of other tools that
// are refused with the unit to write instead (in binary, as nginx means them).
var sizeUnits = map[string]struct {
	bytes     int64
	canonical string
}{
	"b": {1, "B"}, "k": {1 << 10, "KiB"}, "kb": {1 << 10, "KiB"}, "kib": {1 << 10, "KiB"},
	"m": {1 << 20, "MiB"}, "mb": {1 << 20, "MiB"}, "mib": {1 << 20, "MiB"},
	"g": {1 << 30, "GiB"}, "gb": {1 << 30, "GiB"}, "gib": {1 << 30, "GiB"},
}

// parseSize reads a size string. When it is not one routied reads but its meaning is clear
// ("10m", "10 MB", "1.5GiB"), fix is the same size written as routied reads it.
func parseSize(str string) (n int64, fix string, ok bool) {
	t := strings.TrimSpace(str)
	if t == "0" {
		return 0, "", true
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		if isDecimal(t) {
			return 0, t + "MiB", false // a number without a unit; MiB is the likely meaning
		}
		return 0, "", false
	}
	number, unit := t[:i], strings.TrimSpace(t[i:])
	u, known := sizeUnits[strings.ToLower(unit)]
	if !known || !isDecimal(number) {
		return 0, "", false
	}
	f, err := strconv.ParseFloat(number, 64)
	if err != nil || f*float64(u.bytes) >= 1<<62 {
		return 0, "", false
	}
	bytes := int64(f * float64(u.bytes))
	if float64(bytes) != f*float64(u.bytes) {
		return 0, "", false // a fraction of a byte
	}
	if unit == u.canonical && !strings.Contains(number, ".") {
		return bytes, "", true
	}
	return 0, formatSize(bytes), false
}
