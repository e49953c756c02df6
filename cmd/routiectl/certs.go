package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/routie/routie/control"
)

const certsUsage = `Usage: routiectl certs [--json]
       routiectl certs renew NAME

Show the certificate routied serves for each name: its issuer, when it expires and the days
left, and with tls.mode "acme", the last failed attempt to obtain or renew it. A name that
needs attention has a warning: no certificate after a failed attempt, an expired one, or one
that expires within 7 days and that routied failed to renew (or, with tls.mode "files",
cannot renew).

certs renew NAME gets a new certificate for NAME from the ACME CA now, even if the current
one is far from its expiry, and returns once routied serves it; open connections keep the
old one. Use it to check that renewal works after a firewall or DNS change, or when a key may
have leaked. Each renewal counts against the CA's rate limits (Let's Encrypt: 5 certificates
for the same name a week).

Flags:
  --json           print routied's JSON answer as it is, for scripts
  --socket PATH    routied's control socket
                   (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 every certificate is fine (or renewed), 1 a certificate has a warning, a
renewal failed, or routied is unreachable, 2 usage error.

Examples:
  routiectl certs
  routiectl certs --json | jq -r '.certs[] | "\(.name) \(.days_left)"'
  routiectl certs renew example.com
`

func runCerts(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("certs")
	asJSON := fs.Bool("json", false, "")
	args, err := c.parse(fs, args, certsUsage)
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "renew" {
		return c.renewCert(ctx, args[1:])
	}
	if len(args) > 0 {
		return &usageError{message: fmt.Sprintf("certs takes no arguments but renew NAME, got %q", args), hint: "routiectl certs, or routiectl certs renew NAME"}
	}
	raw, err := c.client().CertsJSON(ctx)
	if err != nil {
		return err
	}
	var r control.CertsResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("routied sent a certs answer that does not parse: %w", err)
	}
	if *asJSON {
		c.stdout.Write(raw)
		if !strings.HasSuffix(string(raw), "\n") {
			fmt.Fprintln(c.stdout)
		}
	} else {
		c.printCerts(r.Certs, time.Now())
	}
	for _, s := range r.Certs {
		if s.Warning != "" {
			return exitError{code: 1}
		}
	}
	return nil
}

// printCerts prints a table, with a name's warning or last error below it:
//
//	NAME         ISSUER                          EXPIRES              DAYS LEFT
//	example.com  CN=R11,O=Let's Encrypt,C=US     2026-08-29 10:11:12  89
func (c *cli) printCerts(certs []control.CertStatus, now time.Time) {
	if len(certs) == 0 {
		fmt.Fprintln(c.stdout, `no certificates: routied serves no HTTPS (listen.https is "")`)
		return
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tISSUER\tEXPIRES\tDAYS LEFT")
	for _, s := range certs {
		if s.NotAfter.IsZero() {
			pending := "being obtained"
			if !s.NextAttempt.IsZero() {
				pending = fmt.Sprintf("next attempt in %s", s.NextAttempt.Sub(now).Round(time.Second))
			}
			fmt.Fprintf(tw, "%s\t-\tnone yet\t%s\n", s.Name, pending)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", s.Name, s.Issuer, s.NotAfter.Local().Format(time.DateTime), daysLeft(s, now))
		}
	}
	tw.Flush()
	for _, s := range certs {
		switch {
		case s.Warning != "":
			fmt.Fprintf(c.stdout, "%s: %s\n", s.Name, c.paint(red, "warning: "+s.Warning))
		case s.LastError != "":
			fmt.Fprintf(c.stdout, "%s: %s\n", s.Name, c.paint(yellow, fmt.Sprintf("last attempt failed %s ago: %s", now.Sub(s.LastErrorAt).Round(time.Second), s.LastError)))
		}
	}
}

func (c *cli) renewCert(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return &usageError{message: "certs renew needs one NAME, a name of tls.domains", hint: "routiectl certs renew example.com (routiectl certs lists the names)"}
	}
	fmt.Fprintf(c.stdout, "renewing %s...\n", args[0])
	s, err := c.client().RenewCert(ctx, args[0])
	if err != nil {
		if ctx.Err() != nil {
			return &hintError{err: fmt.Errorf("interrupted: routied stops the renewal of %s; the current certificate stays", args[0]), hint: "routiectl certs"}
		}
		if e := badInput(err, "routiectl certs renew NAME, with a name routiectl certs lists"); e != err {
			return e
		}
		return &hintError{err: fmt.Errorf("renewal of %s failed; the current certificate stays: %w", args[0], err), hint: "routiectl certs, and routied's log (journalctl -u routied)"}
	}
	fmt.Fprintf(c.stdout, "renewed %s: serving certificate %s from %s, valid until %s (%d days)\n",
		s.Name, s.Serial, s.Issuer, s.NotAfter.Local().Format(time.DateTime), daysLeft(s, time.Now()))
	return nil
}

// daysLeft is routied's days_left, or the same count from not_after if it sent none.
func daysLeft(s control.CertStatus, now time.Time) int {
	if s.DaysLeft != nil {
		return *s.DaysLeft
	}
	return int(s.NotAfter.Sub(now) / (24 * time.Hour))
}
