package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/routie/routie/switcher"
)

// colorful reports whether w is a terminal that takes colours. Pipes and files get plain
// text, and NO_COLOR (https://no-color.org) turns colours off.
func colorful(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

const (
	green  = "\x1b[32m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
)

// paint colours s when stdout takes colours.
func (c *cli) paint(color, s string) string {
	if !c.color {
		return s
	}
	return color + s + "\x1b[0m"
}

// verdict colours a probe's or a target's state: green when good, red when bad.
func (c *cli) verdict(good bool, s string) string {
	if good {
		return c.paint(green, s)
	}
	return c.paint(red, s)
}

// progress prints a switch's or rollback's steps as they happen, then its outcome.
type progress struct {
	c     *cli
	force bool
	// verb says what a swap did: "switched" (for ""), or "promoted" for a canary.
	verb string
	// aborted is set once a canary's abort was printed: its report is not a swap.
	aborted bool
	// swapped and drained say which steps were already printed from events, so the final
	// report adds only what is missing.
	swapped, drained bool
	from, to         string
}

func (p *progress) event(ev switcher.Event) {
	switch ev.Kind {
	case switcher.EventProbe:
		if ev.Probe == nil {
			return
		}
		r := ev.Probe
		word := "failed"
		if r.Passed {
			word = "passed"
		}
		fmt.Fprintf(p.c.stdout, "probe %d/%d %s %s: %s\n", ev.Passes, ev.Needed, r.Target, p.c.verdict(r.Passed, word), r.Detail)
	case switcher.EventSwap:
		p.swap(ev.From, ev.To)
	case switcher.EventDrained:
		if ev.Drain != nil {
			p.drain(ev.From, ev.Drain)
		}
	case switcher.EventCanary, switcher.EventCanaryAborted:
		p.canary(ev)
	}
}

func (p *progress) swap(from, to string) {
	p.swapped, p.from, p.to = true, from, to
	forced := ""
	if p.force {
		forced = " (forced: health gate skipped)"
	}
	verb := p.verb
	if verb == "" {
		verb = "switched"
	}
	fmt.Fprintf(p.c.stdout, "%s %s → %s%s\n", verb, from, p.c.paint(green, to), forced)
}

func (p *progress) drain(from string, d *switcher.DrainReport) {
	p.drained = true
	if d.Aborted {
		fmt.Fprintf(p.c.stdout, "stopped draining %s: it became active again\n", from)
		return
	}
	cancelled := fmt.Sprintf("%d cancelled", d.Cancelled)
	if d.Cancelled > 0 {
		cancelled = p.c.paint(yellow, cancelled+" at drain.timeout")
	}
	line := fmt.Sprintf("drained %s: waited for %s (%.2fs), %s", from, plural(d.Waited, "in-flight request", "in-flight requests"), d.Took.Seconds(), cancelled)
	if d.Streams > 0 {
		line += fmt.Sprintf("; %s drain.streams", plural(d.Streams, "stream keeps", "streams keep"))
	}
	fmt.Fprintln(p.c.stdout, line)
}

// result prints what the events did not already say.
func (p *progress) result(rep switcher.Report) {
	switch {
	case rep.NoOp && rep.Weight > 0:
		fmt.Fprintf(p.c.stdout, "canary %s takes %d%% of the clients already; nothing to do\n", rep.To, rep.Weight)
		return
	case rep.NoOp:
		fmt.Fprintf(p.c.stdout, "%s is already active; nothing to do\n", rep.To)
		return
	case !p.swapped && rep.Weight > 0:
		p.canary(switcher.Event{Kind: switcher.EventCanary, From: rep.From, To: rep.To, Weight: rep.Weight})
	case !p.swapped:
		p.swap(rep.From, rep.To)
	}
	if !p.drained && rep.Drain != nil {
		p.drain(rep.From, rep.Drain)
	}
}

// interrupted is the error for a switch or rollback stopped with Ctrl-C.
func (p *progress) interrupted(what string) error {
	switch {
	case p.swapped && what == "canary":
		return fmt.Errorf("interrupted, but the canary %s runs already; routiectl abort drops it", p.to)
	case p.swapped && what == "abort":
		return fmt.Errorf("interrupted after the abort; routied finishes draining the canary %s on its own", p.from)
	case p.swapped:
		return fmt.Errorf("interrupted after the %s to %s; routied finishes draining %s on its own", what, p.to, p.from)
	}
	return &hintError{
		err:  fmt.Errorf("interrupted: routied stops the %s if it is still health-gating, but one already made stays", what),
		hint: "routiectl status",
	}
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
