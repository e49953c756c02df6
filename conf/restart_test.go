package conf

import (
	"slices"
	"testing"
	"time"
)

func TestRestartNeededNamesOnlyKeysThatCannotApplyLive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"live keys only", func(c *Config) {
			c.TLS = TLS{Mode: TLSFiles, CertFile: "/c.pem", KeyFile: "/k.pem", Redirect: false}
			c.Upstream = Upstream{Host: "10.0.0.2", Initial: 9000}
			c.Health = Health{Path: "/", Interval: time.Minute, Timeout: time.Minute, Passes: 9, Wait: time.Hour, ExpectBody: "UP"}
			c.Drain = Drain{Timeout: time.Minute, Streams: 0}
			c.Log = Log{Level: "debug", Format: "json", Access: false}
			c.Limits.MaxBody = 1 << 30
			c.Limits.MaxConnsPerClient = 8
			c.Path = "/elsewhere.toml"
		}, nil},
		{"server timeouts", func(c *Config) { c.Limits.HeaderTimeout = time.Second; c.Limits.IdleTimeout = time.Second },
			[]string{"limits.header_timeout", "limits.idle_timeout"}},
		{"metrics listener", func(c *Config) { c.Metrics.Listen = "" }, []string{"metrics.listen"}},
		{"listeners", func(c *Config) { c.Listen.HTTP = ":8080"; c.Listen.HTTPS = "" }, []string{"listen.http", "listen.https"}},
		{"control socket and mode", func(c *Config) { c.Control.Socket = "/tmp/s"; c.Control.Mode = 0o600 }, []string{"control.socket", "control.mode"}},
		{"state dir among live keys", func(c *Config) { c.State.Dir = "/srv/routie"; c.Health.Passes = 1 }, []string{"state.dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := Default()
			tc.change(&next)
			if got := RestartNeeded(Default(), next); !slices.Equal(got, tc.want) {
				t.Errorf("RestartNeeded = %q, want %q", got, tc.want)
			}
		})
	}
}
