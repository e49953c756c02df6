package main

import (
	"context"
	"fmt"
)

const healthUsage = `Usage: routiectl health TARGET

Probe TARGET once, as the health gate of a switch does (health.path, health.timeout,
health.expect_body), and print the result. Nothing changes.

TARGET is a port (8081) on upstream.host, or host:port (127.0.0.1:8081).

Flags:
  --socket PATH    routied's control socket
                   (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 the probe passed, 1 it failed or routied is unreachable, 2 usage error.

Example, waiting for a new version to come up before switching by hand:
  until routiectl health 8081; do sleep 1; done
`

func runHealth(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("health")
	args, err := c.parse(fs, args, healthUsage)
	if err != nil {
		return err
	}
	switch {
	case len(args) == 0:
		return &usageError{message: "health needs a TARGET, a port such as 8081", hint: "routiectl health 8081"}
	case len(args) > 1:
		return &usageError{message: fmt.Sprintf("health takes one TARGET, got %d: %q", len(args), args), hint: "routiectl health 8081"}
	}
	r, err := c.client().Health(ctx, args[0])
	if err != nil {
		return badInput(err, "routiectl health 8081, or routiectl health 127.0.0.1:8081")
	}
	word := "failed"
	if r.Passed {
		word = "passed"
	}
	fmt.Fprintf(c.stdout, "%s %s: %s\n", r.Target, c.verdict(r.Passed, word), r.Detail)
	if !r.Passed {
		return exitError{code: 1}
	}
	return nil
}
