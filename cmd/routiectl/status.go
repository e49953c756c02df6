package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/routie/routie/control"
	"github.com/routie/routie/health"
	"github.com/routie/routie/switcher"
)

const statusUsage = `Usage: routiectl status [--json]

Show the active target, the canary and its share of the clients if one runs, the
standby (what routiectl rollback returns to), targets still draining, and any switch
that is health-gating: each with its health, the last probe, and its requests in
flight, streams, connections and requests served; then the
certificate of each name served over HTTPS, with a warning when one needs attention (see
routiectl certs).

If routied is still starting, status waits up to a second for its socket.

Flags:
  --json           print routied's JSON answer as it is, for scripts
  --socket PATH    routied's control socket
                   (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 shown, 1 routied unreachable or failed, 2 usage error.

Example, the active target's address in a script:
  routiectl status --json | jq -r .active.addr
`

func runStatus(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("status")
	asJSON := fs.Bool("json", false, "")
	args, err := c.parse(fs, args, statusUsage)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return &usageError{message: fmt.Sprintf("status takes no arguments, got %q", args), hint: "routiectl status, or routiectl health TARGET for one target"}
	}
	if *asJSON {
		raw, err := c.client().StatusJSON(ctx)
		if err != nil {
			return err
		}
		c.stdout.Write(raw)
		if !bytes.HasSuffix(raw, []byte("\n")) {
			fmt.Fprintln(c.stdout)
		}
		return nil
	}
	s, err := c.client().Status(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	c.target("active", s.Active, s.Since, now, "")
	if s.Canary != nil {
		c.target("canary", *s.Canary, time.Time{}, now, fmt.Sprintf("  %d%% of the clients", s.Weight))
	}
	if s.Standby != nil {
		c.target("standby", *s.Standby, time.Time{}, now, "")
	} else {
		fmt.Fprintf(c.stdout, "%-9s none: nothing to roll back to yet\n", "standby")
	}
	for _, d := range s.Draining {
		c.target("draining", d, time.Time{}, now, "")
	}
	if s.Switching != "" {
		fmt.Fprintf(c.stdout, "%-9s %s: health gate running\n", "switching", s.Switching)
	}
	if s.Deploy != nil {
		c.deploy(s.Deploy)
	}
	for _, cert := range s.Certs {
		c.cert(cert)
	}
	fmt.Fprintf(c.stdout, "%-9s %s (pid %d)\n", "routied", s.Version, s.PID)
	return nil
}

// target prints one target in three lines, note after its health:
//
//	active    127.0.0.1:8081  up  since 2025-03-04 05:06:07 (3m12s ago)
//	          3 in flight, 0 streams, 12 connections, 1234 served
//	          last probe 2s ago: passed: HTTP 200 in 2ms
//	canary    127.0.0.1:8082  up  5% of the clients
func (c *cli) target(role string, t switcher.TargetStatus, since, now time.Time, note string) {
	line := fmt.Sprintf("%-9s %s  %s", role, t.Addr, c.verdict(t.Health == health.Up, t.Health.String()))
	if t.Health == health.Unknown {
		line = fmt.Sprintf("%-9s %s  %s", role, t.Addr, c.paint(yellow, t.Health.String()))
	}
	line += note
	if !since.IsZero() {
		line += fmt.Sprintf("  since %s (%s ago)", since.Local().Format(time.DateTime), now.Sub(since).Round(time.Second))
	}
	fmt.Fprintln(c.stdout, line)
	fmt.Fprintf(c.stdout, "%-9s %d in flight, %d streams, %d connections, %d served\n", "", t.InFlight, t.Streams, t.Conns, t.Served)
	if t.Last != nil {
		word := "failed"
		if t.Last.Passed {
			word = "passed"
		}
		fmt.Fprintf(c.stdout, "%-9s last probe %s ago: %s: %s\n", "", now.Sub(t.Last.At).Round(time.Second), c.verdict(t.Last.Passed, word), t.Last.Detail)
	}
}

// cert prints one name's certificate in a line; a warning (see routiectl certs) in red:
//
//	cert      example.com  valid until 2026-08-29 10:11:12 (89 days)
//	cert      example.org  warning: expires in 3 days; renewal failed: …
func (c *cli) cert(s control.CertStatus) {
	var what string
	switch {
	case s.Warning != "":
		what = c.paint(red, "warning: "+s.Warning)
	case s.NotAfter.IsZero():
		what = c.paint(yellow, "no certificate yet: being obtained")
	default:
		what = fmt.Sprintf("valid until %s (%d days)", s.NotAfter.Local().Format(time.DateTime), daysLeft(s, time.Now()))
	}
	fmt.Fprintf(c.stdout, "%-9s %s  %s\n", "cert", s.Name, what)
}
