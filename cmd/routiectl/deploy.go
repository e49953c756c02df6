package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/routie/routie/control"
	"github.com/routie/routie/deploy"
)

const deployUsage = `Usage: routiectl deploy [--to TARGET] [--no-start] [--canary 5,25,50 [--step DURATION]]
       routiectl deploy --abort

Deploy a new version with routied doing all six steps: start it on the idle port
(deploy.start, with {port} filled in), health-check it, switch, watch it for
deploy.monitor against what the old version did, then stop the old one (deploy.stop).
If its error rate or p95 latency is worse (deploy.max_error_rate,
deploy.max_latency_ratio, sustained over deploy.sustain) routied rolls back on its own.

With --canary, the new version does not take every client at once: after its health
gate it takes the first share of the clients (see routiectl canary), then each next one,
every step watched for --step against what the old version does over the same time,
with the same checks; then it is promoted, watched for deploy.monitor at 100% with the
old version standing by, and the old version stopped. A check that trips sends its
clients back to the old version (the deploy ends "rolled back").

The deploy runs inside routied: Ctrl-C, or a dropped SSH session, only stops following
it. routiectl status shows its phase; routiectl deploy --abort rolls it back.

Flags:
  --to TARGET    deploy to TARGET (port or host:port) instead of the idle port of
                 upstream.ports
  --no-start     the new version is started already; skip deploy.start
  --canary 5,25,50
                 walk the new version through these rising shares of the clients
                 (percent, 1 to 99) before promoting it
  --step DURATION
                 how long each --canary step is watched (default: deploy.monitor)
  --abort        stop the deploy in progress; traffic goes back if it had switched
  --socket PATH  routied's control socket
                 (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 deployed; 1 failed, rolled back or aborted; 2 usage error.

Example, from CI after copying the new jar:
  scp app.jar vm:/opt/app/app.jar && ssh vm routiectl deploy

Example, 5% of the clients for two minutes, then a quarter, then half, then everyone:
  routiectl deploy --canary 5,25,50 --step 2m
`

func runDeploy(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("deploy")
	to := fs.String("to", "", "")
	noStart := fs.Bool("no-start", false, "")
	abort := fs.Bool("abort", false, "")
	var steps stepsFlag
	fs.Var(&steps, "canary", "")
	var step durationFlag
	fs.Var(&step, "step", "")
	args, err := c.parse(fs, args, deployUsage)
	if err != nil {
		return err
	}
	if step != 0 && len(steps) == 0 {
		return &usageError{message: "--step is the time of each --canary step", hint: "routiectl deploy --canary 5,25,50 --step 2m"}
	}
	if len(args) > 0 {
		return &usageError{message: fmt.Sprintf("deploy takes no arguments, got %q", args), hint: "routiectl deploy --to 8081"}
	}
	if *abort {
		if *to != "" || *noStart || len(steps) > 0 || step != 0 {
			return &usageError{message: "--abort takes no other flag", hint: "routiectl deploy --abort"}
		}
		id, err := c.client().AbortDeploy(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deploy %d: abort requested; it rolls back if it had switched (routiectl history shows the end)\n", id)
		return nil
	}

	p := &progress{c: c}
	req := control.DeployRequest{To: *to, NoStart: *noStart, Canary: steps, Step: control.Duration(step)}
	rec, err := c.client().Deploy(ctx, req, func(e deploy.Event) {
		printDeployEvent(c, p, e)
	})
	if err != nil {
		if ctx.Err() != nil {
			return &hintError{err: errors.New("stopped following; the deploy goes on inside routied"), hint: "routiectl status, or routiectl deploy --abort"}
		}
		return err
	}
	if rec.Result != deploy.ResultSucceeded {
		return fmt.Errorf("deploy %d %s: %s", rec.ID, rec.Result, rec.Why)
	}
	fmt.Fprintf(c.stdout, "deploy %d %s: %s\n", rec.ID, c.verdict(true, rec.Result), rec.Why)
	return nil
}

func printDeployEvent(c *cli, p *progress, e deploy.Event) {
	switch {
	case e.Switch != nil:
		p.event(*e.Switch)
	case e.Phase == deploy.PhaseDone:
		// The final record says it.
	case e.Message != "":
		fmt.Fprintf(c.stdout, "%-8s %s\n", e.Phase, e.Message)
	}
}

// stepsFlag is --canary: rising percentages, comma-separated.
type stepsFlag []int

func (s *stepsFlag) String() string { return fmt.Sprint([]int(*s)) }

func (s *stepsFlag) Set(v string) error {
	var steps []int
	for _, part := range strings.Split(v, ",") {
		w, err := parseWeight(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("%q is not a whole percentage; write rising percentages from 1 to 99, such as 5,25,50", part)
		}
		if n := len(steps); n > 0 && w <= steps[n-1] {
			return fmt.Errorf("%d after %d: the steps must rise; write them such as 5,25,50", w, steps[n-1])
		}
		steps = append(steps, w)
	}
	*s = steps
	return nil
}

const historyUsage = `Usage: routiectl history [--json]

List past deploys, newest last: when, who, from → to, the result and why.

Flags:
  --json         print routied's JSON
  --socket PATH  routied's control socket
                 (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Example:
  routiectl history
`

func runHistory(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("history")
	asJSON := fs.Bool("json", false, "")
	args, err := c.parse(fs, args, historyUsage)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return &usageError{message: fmt.Sprintf("history takes no arguments, got %q", args), hint: "routiectl history"}
	}
	list, err := c.client().History(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(control.HistoryResponse{Deploys: list})
	}
	if len(list) == 0 {
		fmt.Fprintln(c.stdout, "no deploys yet")
		return nil
	}
	for _, r := range list {
		fmt.Fprintf(c.stdout, "#%d  %s  %s → %s  %s: %s\n", r.ID, r.Started.Local().Format("2006-01-02 15:04:05"), r.From, r.To,
			c.verdict(r.Result == deploy.ResultSucceeded, r.Result), r.Why)
		if r.Who != "" {
			fmt.Fprintf(c.stdout, "     by %s\n", r.Who)
		}
	}
	return nil
}
