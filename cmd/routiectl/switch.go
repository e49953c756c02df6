package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/routie/routie/control"
)

const switchUsage = `Usage: routiectl switch TARGET [--wait DURATION] [--force]

Make TARGET the active target. routied probes TARGET until it passes health.passes
probes in a row (the health gate), sends every new request to it in one step, and
waits for the requests still in flight on the old target. The old target becomes the
standby, for routiectl rollback. Progress is printed as it happens; Ctrl-C aborts a
switch that is still health-gating.

TARGET is a port (8081) on upstream.host, or host:port (127.0.0.1:8081).

Flags:
  --wait DURATION  how long the health gate may take before the switch is refused
                   (default: health.wait from routie.toml)
  --force          skip the health gate and switch now
  --socket PATH    routied's control socket
                   (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 switched, or TARGET was already active; 1 refused or failed; 2 usage error.

Example, deploying a new version on port 8081 while 8080 serves:
  systemctl start app@8081
  routiectl switch 8081 && systemctl stop app@8080

Example, giving a slow starter five minutes:
  routiectl switch 8081 --wait 5m
`

func runSwitch(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("switch")
	var wait durationFlag
	fs.Var(&wait, "wait", "")
	force := fs.Bool("force", false, "")
	args, err := c.parse(fs, args, switchUsage)
	if err != nil {
		return err
	}
	switch {
	case len(args) == 0:
		return &usageError{message: "switch needs a TARGET, a port such as 8081", hint: "routiectl switch 8081"}
	case len(args) > 1:
		return &usageError{message: fmt.Sprintf("switch takes one TARGET, got %d: %q", len(args), args), hint: "routiectl switch 8081"}
	}
	target := args[0]

	p := &progress{c: c, force: *force}
	req := control.SwitchRequest{Target: target, Wait: control.Duration(wait), Force: *force}
	rep, err := c.client().Switch(ctx, req, p.event)
	if err != nil {
		if ctx.Err() != nil {
			return p.interrupted("switch")
		}
		return switchFailed(err, target, time.Duration(wait))
	}
	p.result(rep)
	return nil
}

// switchFailed adds the next step to a switch that routied did not do.
func switchFailed(err error, target string, wait time.Duration) error {
	var ce *control.Error
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Kind {
	case control.KindBadTarget, control.KindBadRequest:
		return badInput(err, "routiectl switch 8081, or routiectl switch 127.0.0.1:8081")
	case control.KindRefused:
		longer := "5m"
		if wait >= 5*time.Minute {
			longer = (2 * wait).String()
		}
		return &hintError{err: err, hint: fmt.Sprintf("routiectl health %s to probe it again; routiectl switch %s --wait %s to give it longer", target, target, longer)}
	case control.KindInProgress:
		return &hintError{err: err, hint: "routiectl status"}
	case control.KindCanaryRunning:
		return &hintError{err: err, hint: "routiectl promote, or routiectl abort"}
	}
	return err
}
