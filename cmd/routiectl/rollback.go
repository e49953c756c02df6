package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/routie/routie/control"
)

const rollbackUsage = `Usage: routiectl rollback [--force] [--start]

Make the standby, the target that was active before the last switch, active again.
routied probes it once first (it has been probed all along) and then switches as
routiectl switch does, waiting for the requests in flight on the target it leaves.

Flags:
  --force          skip the probe and switch now
  --start          the standby's app was stopped by a deploy: run deploy.start for it
                   first, then switch through the health gate
  --socket PATH    routied's control socket
                   (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 rolled back; 1 refused, nothing to roll back to, or failed; 2 usage error.

Example, after a deploy to 8081 that misbehaves while app@8080 still runs:
  routiectl rollback && systemctl stop app@8081
`

func runRollback(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("rollback")
	force := fs.Bool("force", false, "")
	start := fs.Bool("start", false, "")
	args, err := c.parse(fs, args, rollbackUsage)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return &usageError{message: fmt.Sprintf("rollback takes no arguments, got %q", args), hint: "routiectl rollback, or routiectl switch TARGET to choose the target"}
	}

	p := &progress{c: c, force: *force}
	rep, err := c.client().RollbackWith(ctx, control.RollbackRequest{Force: *force, Start: *start}, p.event)
	if err != nil {
		if ctx.Err() != nil {
			return p.interrupted("rollback")
		}
		var ce *control.Error
		if errors.As(err, &ce) && ce.Kind == control.KindRefused {
			return &hintError{err: err, hint: "start the app on the standby's port again and retry; routiectl rollback --force only if you know it serves"}
		}
		if errors.As(err, &ce) && ce.Kind == control.KindStandbyStopped {
			return &hintError{err: err, hint: "routiectl rollback --start"}
		}
		if errors.As(err, &ce) && ce.Kind == control.KindInProgress {
			return &hintError{err: err, hint: "routiectl status"}
		}
		if errors.As(err, &ce) && ce.Kind == control.KindCanaryRunning {
			return &hintError{err: err, hint: "routiectl abort drops the canary; a rollback is not needed while it runs"}
		}
		return err
	}
	p.result(rep)
	return nil
}
