package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/routie/routie/control"
)

const versionUsage = `Usage: routiectl version

Print the versions of routiectl and of the routied it talks to. When routied cannot be
reached, routiectl's version is still printed, and the exit status is 1.

Flags:
  --socket PATH    routied's control socket
                   (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Example:
  routiectl version
`

func runVersion(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("version")
	args, err := c.parse(fs, args, versionUsage)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return &usageError{message: fmt.Sprintf("version takes no arguments, got %q", args), hint: "routiectl version"}
	}
	fmt.Fprintf(c.stdout, "routiectl %s (%s)\n", control.Version, runtime.Version())
	v, err := c.client().Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "routied   %s (%s)\n", v.Version, v.Go)
	return nil
}
