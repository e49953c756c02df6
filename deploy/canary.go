package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/routie/routie/switcher"
)

// A canary deploy starts the new version, gives it the first step's share of the clients
// once it passes the health gate, and watches it for a step's time at each share: every
// deploy.sustain window of the canary is judged (Judge) against the active target's answers
// over the same window, so both face the same traffic at the same moment. After the last
// step it promotes the canary (the old version drains and stands by), watches it at 100% for
// deploy.monitor as a plain deploy does (a tripped figure rolls back to the old version), and
// then stops the old version. A tripped check, deploy --abort, or a failed promotion during
// the steps aborts the canary instead: its clients go back to the active target and it
// drains; the deploy ends "rolled back" (or "aborted", "failed").
//
// An operator may step in: routiectl promote ends the walk early and the deploy goes on to
// stop the old version; routiectl abort ends it as aborted. routiectl canary --weight
// changes the share until the walk's next step sets its own.

// Phases of a canary deploy, between start and stop (or rollback).
const (
	PhaseCanary  = "canary"  // health gate, then each step's share, watched
	PhasePromote = "promote" // the canary becomes active; the old target drains
)

// CanaryStatus is where a canary deploy's walk stands.
type CanaryStatus struct {
	// Steps are the shares in percent, Step the current one's number (from 1).
	Steps []int `json:"steps"`
	Step  int   `json:"step"`
	// Weight is the canary's share now, in percent.
	Weight int `json:"weight"`
	// StepLeft is the time left at this share.
	StepLeft time.Duration `json:"step_left"`
}

// canaryWatch is a canary deploy's view of both targets, for Current. It is guarded by the
// run's mu.
type canaryWatch struct {
	steps    []int
	step     int // index into steps
	stepEnds time.Time
	// canary and active sample the two targets over the last deploy.sustain.
	canary, active samples
}

// CheckCanarySteps returns an error unless steps are rising percentages from 1 to 99, for
// Request.Canary. An empty list is a plain deploy.
func CheckCanarySteps(steps []int) error {
	for i, w := range steps {
		if w < 1 || w > 99 {
			return fmt.Errorf("canary step %d%% is out of range: each step is a share of the clients from 1 to 99 (after the last one the canary is promoted)", w)
		}
		if i > 0 && w <= steps[i-1] {
			return fmt.Errorf("canary steps %s do not rise: %d after %d; write them such as 5,25,50", formatSteps(steps), w, steps[i-1])
		}
	}
	return nil
}

func formatSteps(steps []int) string {
	s := make([]string, len(steps))
	for i, w := range steps {
		s[i] = strconv.Itoa(w)
	}
	return strings.Join(s, ",")
}

// errHandOff stops a canary walk when an operator ended the canary by hand.
type errHandOff struct{ promoted bool }

func (e errHandOff) Error() string {
	if e.promoted {
		return "the canary was promoted by hand"
	}
	return "the canary was aborted by hand"
}

// walkCanary runs the canary steps and the promotion. It returns ok when the canary is
// active and the deploy goes on to stop the old version, with why saying how the walk went;
// otherwise the deploy's result and why.
func (d *Deployer) walkCanary(ctx context.Context, r *run, req Request, st Settings) (ok bool, result, why string) {
	step := req.Step
	if step <= 0 {
		step = st.Monitor
	}
	cw := &canaryWatch{steps: req.Canary}
	cw.canary.keep, cw.active.keep = st.Sustain, st.Sustain
	r.mu.Lock()
	r.canary = cw
	r.mu.Unlock()
	switchEvents := func(phase string) switcher.SwitchOptions {
		return switcher.SwitchOptions{Progress: func(e switcher.Event) { r.emit(phase, "", &e) }}
	}

	for i, weight := range req.Canary {
		if i == 0 {
			d.phase(r, PhaseCanary, fmt.Sprintf("health-checking %s, then sending it %d%% of the clients (steps %s%%, %s each)", r.to, weight, formatSteps(req.Canary), step))
			if _, err := d.sw.Canary(ctx, r.to, weight, switchEvents(PhaseCanary)); err != nil {
				if ctx.Err() != nil {
					return false, ResultAborted, "aborted during the health gate; nothing was switched"
				}
				var refused *switcher.RefusedError
				if errors.As(err, &refused) {
					return false, ResultFailed, fmt.Sprintf("the new version never became healthy: %v; nothing was switched", err)
				}
				return false, ResultFailed, fmt.Sprintf("canary refused: %v; nothing was switched", err)
			}
		} else {
			if _, err := d.sw.SetCanaryWeight(weight); err != nil {
				if h, ended := d.handOff(r); ended {
					return d.endedByHand(r, h, cw)
				}
				return d.abortCanary(r, ResultFailed, fmt.Sprintf("the canary's share could not be raised to %d%%: %v", weight, err))
			}
			r.emit(PhaseCanary, fmt.Sprintf("%s now takes %d%% of the clients", r.to, weight), nil)
		}
		// The old version's answers so far, in case the canary is promoted by hand during
		// this step; the walk's own promotion takes a fresher one.
		d.keepBaseline(r, st)
		ends := time.Now().Add(step)
		r.mu.Lock()
		cw.step, cw.stepEnds = i, ends
		r.mu.Unlock()
		r.emit(PhaseCanary, fmt.Sprintf("step %d of %d: watching %s at %d%% for %s against %s over the same windows (error rate over %s, p95 over %s× the active's)",
			i+1, len(req.Canary), r.to, weight, step, r.from, percent(st.Limits.MaxErrorRate), strconv.FormatFloat(st.Limits.MaxLatencyRatio, 'g', -1, 64)), nil)
		v, judged, err := d.watchCanary(ctx, r, cw, st, ends)
		var h errHandOff
		switch {
		case errors.As(err, &h):
			return d.endedByHand(r, h, cw)
		case err != nil && ctx.Err() != nil:
			return d.abortCanary(r, ResultAborted, fmt.Sprintf("aborted during the canary at %d%%", weight))
		case err != nil:
			return d.abortCanary(r, ResultFailed, err.Error())
		case v.Trip:
			return d.abortCanary(r, ResultRolledBack, fmt.Sprintf("%s at %d%% of the clients", v.Reason(), weight))
		case judged == 0:
			r.emit(PhaseCanary, fmt.Sprintf("step %d of %d: too few requests on %s to judge a %s window (deploy.min_requests %d); going on", i+1, len(req.Canary), r.to, st.Sustain, st.Limits.MinRequests), nil)
		}
	}

	d.keepBaseline(r, st)
	d.phase(r, PhasePromote, fmt.Sprintf("promoting %s: %s drains and stands by", r.to, r.from))
	if _, err := d.sw.Promote(ctx, switchEvents(PhasePromote)); err != nil {
		if h, ended := d.handOff(r); ended {
			return d.endedByHand(r, h, cw)
		}
		if ctx.Err() != nil {
			return d.abortCanary(r, ResultAborted, "aborted during the promotion")
		}
		return d.abortCanary(r, ResultFailed, fmt.Sprintf("the promotion failed: %v", err))
	}
	return true, "", fmt.Sprintf("%s watched at %s%% of the clients, %s each, without a problem, and promoted", r.to, formatSteps(req.Canary), step)
}

// watchCanary samples both targets every tick until ends, judging each deploy.sustain
// window of the canary against the active target's same window. It returns the tripped
// verdict, if any, and how many windows were judged with enough requests.
func (d *Deployer) watchCanary(ctx context.Context, r *run, cw *canaryWatch, st Settings, ends time.Time) (Verdict, int, error) {
	t := time.NewTicker(d.tick)
	defer t.Stop()
	judged := 0
	for {
		if h, ended := d.handOff(r); ended {
			return Verdict{}, judged, h
		}
		c, cok := d.sw.TargetStats(r.to)
		a, aok := d.sw.TargetStats(r.from)
		if cok && aok {
			now := time.Now()
			r.mu.Lock()
			cw.canary.add(now, c)
			cw.active.add(now, a)
			window, took := cw.canary.window(st.Sustain)
			base, _ := cw.active.window(st.Sustain)
			r.mu.Unlock()
			if took >= st.Sustain {
				v := Judge(base, window, st.Limits)
				if v.Trip {
					return v, judged, nil
				}
				if v.Requests >= st.Limits.MinRequests && v.Requests > 0 {
					judged++
				}
			}
		}
		if !time.Now().Before(ends) {
			return Verdict{}, judged, nil
		}
		select {
		case <-ctx.Done():
			return Verdict{}, judged, ctx.Err()
		case <-t.C:
		}
	}
}

// handOff reports whether the canary was ended by hand: promoted (the new target is
// active) or aborted (no canary, the old one still active).
func (d *Deployer) handOff(r *run) (errHandOff, bool) {
	s := d.sw.Status()
	switch {
	case s.Canary != nil && s.Canary.Addr == r.to:
		return errHandOff{}, false
	case s.Active.Addr == r.to:
		return errHandOff{promoted: true}, true
	}
	return errHandOff{}, true
}

// endedByHand ends the walk after an operator ended the canary.
func (d *Deployer) endedByHand(r *run, h errHandOff, cw *canaryWatch) (ok bool, result, why string) {
	r.mu.Lock()
	weight := cw.steps[cw.step]
	r.mu.Unlock()
	if h.promoted {
		r.emit(PhaseCanary, fmt.Sprintf("%s was promoted by hand (routiectl promote) at step %d%%", r.to, weight), nil)
		return true, "", fmt.Sprintf("%s was promoted by hand at %d%% of the clients", r.to, weight)
	}
	return false, ResultAborted, fmt.Sprintf("the canary %s was ended by hand (routiectl abort) at %d%% of the clients; the active target is %s", r.to, weight, d.sw.Status().Active.Addr)
}

// abortCanary sends the canary's clients back to the old target and drains it; result and
// why say why. It returns the deploy's result and why.
func (d *Deployer) abortCanary(r *run, result, why string) (bool, string, string) {
	if d.closing.Load() {
		// routied is stopping (or upgrading): the canary stays as saved and the next
		// routied serves it; the history records the deploy as interrupted.
		return false, ResultInterrupted, why
	}
	d.phase(r, PhaseRollback, fmt.Sprintf("aborting the canary %s: %s", r.to, why))
	// A deploy that decided to abort finishes doing so even if its caller left.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.sw.AbortCanary(ctx, switcher.SwitchOptions{Progress: func(e switcher.Event) { r.emit(PhaseRollback, "", &e) }})
	if err != nil && !errors.Is(err, switcher.ErrNoCanary) {
		return false, ResultFailed, fmt.Sprintf("%s, and the abort of the canary %s failed: %v", why, r.to, err)
	}
	return false, result, why + "; every client is back on " + r.from
}

// canaryStatus fills s from a canary deploy's watch. Call with r.mu held.
func (r *run) canaryStatus(s *Status, sustain time.Duration) {
	cw := r.canary
	s.Canary = &CanaryStatus{Steps: cw.steps, Step: cw.step + 1, Weight: cw.steps[cw.step]}
	if !cw.stepEnds.IsZero() {
		s.Canary.StepLeft = max(0, time.Until(cw.stepEnds)).Round(time.Second)
	}
	snap, took := cw.canary.window(sustain)
	s.New = figures(r.to, snap, took)
	base, took := cw.active.window(sustain)
	s.Old = figures(r.from, base, took)
}
