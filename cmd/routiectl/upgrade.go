package main

import (
	"context"
	"fmt"

	"github.com/routie/routie/control"
)

const upgradeUsage = `Usage: routiectl upgrade

Replace the running routied with the routied binary on disk, without refusing a
connection: the new process gets the listening sockets, says when it is ready, and the old
one finishes its in-flight requests (drain.timeout) and exits. WebSockets and event streams
stay on the old process for up to drain.streams.

routiectl returns once the new process serves, and prints both PIDs. When the new binary
does not start (or is not ready within a minute), the old routied keeps serving, and
routiectl says why and exits 1. systemd's routied.service runs this as its ExecReload, so
"systemctl reload routied" fails too.

Sending SIGHUP to routied does the same, but nobody learns the outcome but the log.

Flags:
  --socket PATH    routied's control socket
                   (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Example, installing a new version:
  install -m 755 routied /usr/local/bin/routied
  routied -check -config /etc/routie/routie.toml && routiectl upgrade
`

func runUpgrade(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("upgrade")
	args, err := c.parse(fs, args, upgradeUsage)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return &usageError{message: fmt.Sprintf("upgrade takes no arguments, got %q", args), hint: "routiectl upgrade"}
	}
	resp, err := c.client().Upgrade(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, upgradedLine(resp))
	return nil
}

// upgradedLine says who serves now.
func upgradedLine(r control.UpgradeResponse) string {
	if r.NewPID == 0 {
		return fmt.Sprintf("upgraded: a new routied serves; the old one (pid %d) finishes its in-flight requests and exits", r.OldPID)
	}
	return fmt.Sprintf("upgraded: routied pid %d serves; the old one (pid %d) finishes its in-flight requests and exits", r.NewPID, r.OldPID)
}
