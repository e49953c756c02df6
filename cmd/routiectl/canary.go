package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/routie/routie/control"
	"github.com/routie/routie/switcher"
)

const canaryUsage = `Usage: routiectl canary TARGET --weight PERCENT [--wait DURATION] [--force]
       routiectl canary --weight PERCENT

Send PERCENT of the clients to TARGET, the new version, while the active target keeps
the rest. TARGET passes the health gate first, as for a switch. routied gives each
client a cookie (routie_canary) on its first answer and keeps it on its side from then
on; a client that keeps no cookies is split anew at each request. Without TARGET,
change the running canary's share: raising it moves more clients onto the canary and
none back.

End the canary with routiectl promote (make it active; the old version drains and
stands by) or routiectl abort (send its clients back and drain it). While it runs,
switch and rollback are refused. routiectl status shows both targets side by side.

TARGET is a port (8081) on upstream.host, or host:port (127.0.0.1:8081).

Flags:
  --weight PERCENT  the canary's share of the clients, 1 to 99 (required)
  --wait DURATION   how long the health gate may take (default: health.wait)
  --force           skip the health gate
  --socket PATH     routied's control socket
                    (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 done; 1 refused or failed; 2 usage error.

Example, trying a new version on 5% of the users, then on a quarter, then keeping it:
  systemctl start app@8081
  routiectl canary 8081 --weight 5
  routiectl canary --weight 25
  routiectl promote && systemctl stop app@8080

Example, dropping it:
  routiectl abort && systemctl stop app@8081
`

func runCanary(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("canary")
	var weight weightFlag
	fs.Var(&weight, "weight", "")
	var wait durationFlag
	fs.Var(&wait, "wait", "")
	force := fs.Bool("force", false, "")
	args, err := c.parse(fs, args, canaryUsage)
	if err != nil {
		return err
	}
	switch {
	case len(args) > 1:
		return &usageError{message: fmt.Sprintf("canary takes one TARGET, got %d: %q", len(args), args), hint: "routiectl canary 8081 --weight 5"}
	case weight == 0 && len(args) == 0:
		return &usageError{message: "canary needs --weight, and a TARGET to start one", hint: "routiectl canary 8081 --weight 5, or routiectl canary --weight 25 for the running canary"}
	case weight == 0:
		return &usageError{message: "canary needs --weight, the canary's share of the clients in percent", hint: "routiectl canary " + args[0] + " --weight 5"}
	case len(args) == 0 && (wait != 0 || *force):
		return &usageError{message: "--wait and --force are for starting a canary: changing its weight has no health gate", hint: "routiectl canary --weight " + strconv.Itoa(int(weight))}
	}

	if len(args) == 0 {
		rep, err := c.client().SetCanaryWeight(ctx, int(weight))
		if err != nil {
			return canaryFailed(err, "", 0, 0)
		}
		if rep.NoOp {
			fmt.Fprintf(c.stdout, "canary %s takes %d%% of the clients already; nothing to do\n", rep.To, rep.Weight)
			return nil
		}
		fmt.Fprintf(c.stdout, "canary %s now takes %s of the clients; %s keeps the rest\n", rep.To, c.paint(green, strconv.Itoa(rep.Weight)+"%"), rep.From)
		return nil
	}
	target := args[0]
	p := &progress{c: c, force: *force}
	req := control.CanaryRequest{Target: target, Weight: int(weight), Wait: control.Duration(wait), Force: *force}
	rep, err := c.client().Canary(ctx, req, p.event)
	if err != nil {
		if ctx.Err() != nil {
			return p.interrupted("canary")
		}
		return canaryFailed(err, target, int(weight), time.Duration(wait))
	}
	p.result(rep)
	return nil
}

// canaryFailed adds the next step to a canary operation that routied did not do; target,
// weight and wait are the canary's that was asked for, if one was.
func canaryFailed(err error, target string, weight int, wait time.Duration) error {
	var ce *control.Error
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Kind {
	case control.KindBadTarget, control.KindBadRequest:
		return badInput(err, "routiectl canary 8081 --weight 5")
	case control.KindRefused:
		longer := "5m"
		if wait >= 5*time.Minute {
			longer = (2 * wait).String()
		}
		return &hintError{err: err, hint: fmt.Sprintf("routiectl health %s to probe it again; routiectl canary %s --weight %d --wait %s to give it longer", target, target, weight, longer)}
	case control.KindCanaryRunning:
		return &hintError{err: err, hint: "routiectl status; routiectl canary --weight N changes the running canary's share"}
	case control.KindNoCanary:
		return &hintError{err: err, hint: "routiectl canary TARGET --weight 5 starts one"}
	case control.KindAlreadyActive, control.KindInProgress:
		return &hintError{err: err, hint: "routiectl status"}
	}
	return err
}

// weightFlag is a canary weight: a whole percentage from 1 to 99, with or without "%".
type weightFlag int

func (w *weightFlag) String() string { return strconv.Itoa(int(*w)) }

func (w *weightFlag) Set(s string) error {
	v, err := parseWeight(s)
	if err != nil {
		return err
	}
	*w = weightFlag(v)
	return nil
}

func parseWeight(s string) (int, error) {
	if len(s) > 0 && s[len(s)-1] == '%' {
		s = s[:len(s)-1]
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, errors.New("not a whole percentage; write a number from 1 to 99, such as 5")
	}
	if v < 1 || v > 99 {
		return 0, errors.New("out of range; a canary takes 1 to 99 percent of the clients (promote gives it all of them)")
	}
	return v, nil
}

const promoteUsage = `Usage: routiectl promote [--force]

Make the canary the active target. routied probes it once (it has served all along),
then switches to it as routiectl switch does: every new request goes to it, and the
old active target drains its requests in flight and becomes the standby, for
routiectl rollback.

Flags:
  --force          skip the probe and promote now
  --socket PATH    routied's control socket
                   (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 promoted; 1 refused, no canary, or failed; 2 usage error.

Example, keeping the version on 8081 after its canary went well:
  routiectl promote && systemctl stop app@8080
`

func runPromote(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("promote")
	force := fs.Bool("force", false, "")
	args, err := c.parse(fs, args, promoteUsage)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return &usageError{message: fmt.Sprintf("promote takes no arguments, got %q", args), hint: "routiectl promote, which makes the running canary active"}
	}
	p := &progress{c: c, force: *force, verb: "promoted"}
	rep, err := c.client().Promote(ctx, control.PromoteRequest{Force: *force}, p.event)
	if err != nil {
		if ctx.Err() != nil {
			return p.interrupted("promotion")
		}
		var ce *control.Error
		if errors.As(err, &ce) && ce.Kind == control.KindRefused {
			return &hintError{err: err, hint: "routiectl abort to drop the canary; routiectl promote --force only if you know it serves"}
		}
		return canaryFailed(err, "", 0, 0)
	}
	p.result(rep)
	return nil
}

const abortUsage = `Usage: routiectl abort

Drop the canary: every new request goes to the active target again, and the canary
drains as a target switched away from does (its requests in flight finish, up to
drain.timeout; its streams get drain.streams). routiectl returns once its requests
are done.

To stop a deploy in progress, use routiectl deploy --abort.

Flags:
  --socket PATH    routied's control socket
                   (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 aborted; 1 no canary, or failed; 2 usage error.

Example, after a canary on 8081 that misbehaves:
  routiectl abort && systemctl stop app@8081
`

func runAbort(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("abort")
	args, err := c.parse(fs, args, abortUsage)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return &usageError{message: fmt.Sprintf("abort takes no arguments, got %q", args), hint: "routiectl abort, which drops the running canary"}
	}
	p := &progress{c: c}
	rep, err := c.client().AbortCanary(ctx, p.event)
	if err != nil {
		if ctx.Err() != nil {
			return p.interrupted("abort")
		}
		return canaryFailed(err, "", 0, 0)
	}
	if !p.aborted {
		p.canary(switcher.Event{Kind: switcher.EventCanaryAborted, From: rep.From, To: rep.To})
	}
	p.result(rep)
	return nil
}

// canary prints a canary's start or abort.
func (p *progress) canary(ev switcher.Event) {
	switch ev.Kind {
	case switcher.EventCanary:
		p.swapped, p.from, p.to = true, ev.From, ev.To
		forced := ""
		if p.force {
			forced = " (forced: health gate skipped)"
		}
		fmt.Fprintf(p.c.stdout, "canary %s takes %s of the clients; %s keeps the rest%s\n", p.c.paint(green, ev.To), p.c.paint(green, strconv.Itoa(ev.Weight)+"%"), ev.From, forced)
	case switcher.EventCanaryAborted:
		p.swapped, p.from, p.to, p.aborted = true, ev.From, ev.To, true
		fmt.Fprintf(p.c.stdout, "aborted canary %s: every request goes to %s\n", ev.From, p.c.paint(green, ev.To))
	}
}
