package conf

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// notShown stands in for a secret in a configuration shown to a person.
const notShown = "(set; not shown)"

// Redacted returns c with its secrets (tls.eab_hmac, the key a CA gave for the account)
// replaced by a note, so that `routied -check` output can be pasted into a ticket or a chat.
func (c Config) Redacted() Config {
	if c.TLS.EABHMAC != "" {
		c.TLS.EABHMAC = notShown
	}
	return c
}

// Encode returns c as a TOML file that sets every key, durations as "1s" and the socket mode
// as "0660", so `routied -check` can show the configuration routied actually runs with,
// defaults included (like `nginx -T`). Parsing the output gives back c, except for Path.
func (c Config) Encode() []byte {
	var b bytes.Buffer
	b.WriteString("# The effective routie configuration: every key, defaults included.\n")
	if c.Path != "" {
		fmt.Fprintf(&b, "# Read from %s.\n", c.Path)
	}
	section := func(name string) { fmt.Fprintf(&b, "\n[%s]\n", name) }
	str := func(key, v string) { fmt.Fprintf(&b, "%s = %s\n", key, quote(v)) }
	integer := func(key string, v int) { fmt.Fprintf(&b, "%s = %d\n", key, v) }
	boolean := func(key string, v bool) { fmt.Fprintf(&b, "%s = %t\n", key, v) }
	duration := func(key string, v time.Duration) { str(key, formatDuration(v)) }
	list := func(key string, v []string) { fmt.Fprintf(&b, "%s = %s\n", key, formatValue(anyList(v))) }

	section("listen")
	str("http", c.Listen.HTTP)
	str("https", c.Listen.HTTPS)

	section("tls")
	str("mode", c.TLS.Mode)
	list("domains", c.TLS.Domains)
	str("email", c.TLS.Email)
	str("ca", c.TLS.CA)
	str("ca_root", c.TLS.CARoot)
	list("challenges", c.TLS.Challenges)
	str("storage", c.TLS.Storage)
	str("eab_kid", c.TLS.EABKeyID)
	str("eab_hmac", c.TLS.EABHMAC)
	str("cert_file", c.TLS.CertFile)
	str("key_file", c.TLS.KeyFile)
	boolean("redirect", c.TLS.Redirect)
	duration("hsts", c.TLS.HSTS)

	section("upstream")
	str("host", c.Upstream.Host)
	integer("initial", c.Upstream.Initial)
	ports := make([]string, len(c.Upstream.Ports))
	for i, p := range c.Upstream.Ports {
		ports[i] = strconv.Itoa(p)
	}
	fmt.Fprintf(&b, "ports = [%s]\n", strings.Join(ports, ", "))

	section("health")
	str("path", c.Health.Path)
	duration("interval", c.Health.Interval)
	duration("timeout", c.Health.Timeout)
	integer("passes", c.Health.Passes)
	duration("wait", c.Health.Wait)
	str("expect_body", c.Health.ExpectBody)

	section("drain")
	duration("timeout", c.Drain.Timeout)
	duration("streams", c.Drain.Streams)

	section("limits")
	str("max_body", formatSize(c.Limits.MaxBody))
	integer("max_conns_per_client", c.Limits.MaxConnsPerClient)
	duration("header_timeout", c.Limits.HeaderTimeout)
	duration("idle_timeout", c.Limits.IdleTimeout)

	section("control")
	str("socket", c.Control.Socket)
	str("mode", formatMode(c.Control.Mode))

	section("state")
	str("dir", c.State.Dir)

	section("log")
	str("level", c.Log.Level)
	str("format", c.Log.Format)
	boolean("access", c.Log.Access)

	section("metrics")
	str("listen", c.Metrics.Listen)

	section("deploy")
	str("start", c.Deploy.Start)
	str("stop", c.Deploy.Stop)
	duration("start_timeout", c.Deploy.StartTimeout)
	duration("monitor", c.Deploy.Monitor)
	duration("sustain", c.Deploy.Sustain)
	integer("min_requests", c.Deploy.MinRequests)
	fmt.Fprintf(&b, "max_error_rate = %s\n", formatFloat(c.Deploy.MaxErrorRate))
	fmt.Fprintf(&b, "max_latency_ratio = %s\n", formatFloat(c.Deploy.MaxLatencyRatio))
	duration("latency_floor", c.Deploy.LatencyFloor)
	return b.Bytes()
}

// quote writes s as a TOML basic string. strconv.Quote is close but not the same: TOML has no
// \x or \a escapes.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// formatDuration writes d as the operator would: "2m" rather than Go's "2m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatMode writes m in octal with a leading 0, as chmod takes it: "0660".
func formatMode(m os.FileMode) string {
	return fmt.Sprintf("0%03o", uint32(m))
}

// formatSize writes n bytes in the largest binary unit that divides it exactly: "10MiB",
// "1536KiB", "1500B", "0".
func formatSize(n int64) string {
	if n == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// formatFloat writes f so that TOML reads it back as a float: 2 becomes 2.0.
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}
