package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
)

// deploy runs the steps of one deploy and records how it ended.
func (d *Deployer) deploy(ctx context.Context, r *run, req Request, st Settings) {
	result, why := d.steps(ctx, r, req, st)
	if d.closing.Load() {
		r.mu.Lock()
		p := r.record.Phase
		r.mu.Unlock()
		result, why = ResultInterrupted, fmt.Sprintf("routied stopped during the %s phase; the active target stayed as saved", p)
	}
	now := time.Now()
	rec, err := d.history.update(r.id, func(rec *Record) {
		rec.Result, rec.Why, rec.Finished = result, why, &now
	})
	if err != nil {
		d.log.Error("cannot record the end of a deploy", "deploy", r.id, "err", err)
		rec = r.record
		rec.Result, rec.Why, rec.Finished = result, why, &now
	}
	level := d.log.Info
	if result != ResultSucceeded {
		level = d.log.Warn
	}
	level("deploy ended", "deploy", r.id, "from", r.from, "to", r.to, "result", result, "why", why)
	r.mu.Lock()
	r.record = rec
	r.mu.Unlock()
	r.emit(PhaseDone, fmt.Sprintf("deploy %d %s: %s", r.id, result, why), nil)
	r.mu.Lock()
	r.events[len(r.events)-1].Done = &rec
	r.mu.Unlock()
}

// phase moves the deploy to p, in memory and in the history (so a restart knows where it
// stopped).
func (d *Deployer) phase(r *run, p, message string) {
	// On disk first: a status that shows the phase must never be ahead of what a restart
	// would find.
	if _, err := d.history.update(r.id, func(rec *Record) { rec.Phase = p }); err != nil {
		d.log.Error("cannot record the deploy's phase", "deploy", r.id, "err", err)
	}
	r.mu.Lock()
	r.record.Phase = p
	r.mu.Unlock()
	d.log.Info("deploy "+p, "deploy", r.id, "detail", message)
	r.emit(p, message, nil)
}

// steps runs start, switch, monitor and stop, and returns the result and why.
func (d *Deployer) steps(ctx context.Context, r *run, req Request, st Settings) (string, string) {
	toHost, toPort := splitTarget(r.to)

	// 1. Start the new version.
	switch {
	case req.NoStart:
		d.phase(r, PhaseStart, fmt.Sprintf("--no-start: %s was started by hand", r.to))
	case st.Start == "":
		d.phase(r, PhaseStart, "deploy.start is empty: expecting the new version to be started already")
	default:
		d.phase(r, PhaseStart, fmt.Sprintf("starting the new version: %s", fill(st.Start, toHost, toPort)))
		err := runCommand(ctx, fill(st.Start, toHost, toPort), st.StartTimeout, d.log, func(line string) { r.emit(PhaseStart, line, nil) })
		if ctx.Err() != nil {
			return ResultAborted, "aborted while the new version was starting; nothing was switched"
		}
		if err != nil {
			return ResultFailed, fmt.Sprintf("deploy.start failed: %v; nothing was switched", err)
		}
	}

	// 2. A canary deploy walks its steps and promotes (canary.go), then watches and stops
	// the old version as below.
	if len(req.Canary) > 0 {
		ok, result, why := d.walkCanary(ctx, r, req, st)
		if !ok {
			return result, why
		}
		return d.watchThenStop(ctx, r, st, why+"; then ")
	}

	// 2. Health gate and switch; the baseline is the old target's recent answers.
	d.keepBaseline(r, st)
	d.phase(r, PhaseSwitch, fmt.Sprintf("health-checking %s, then switching %s → %s", r.to, r.from, r.to))
	rep, err := d.sw.Switch(ctx, r.to, switcher.SwitchOptions{Progress: func(e switcher.Event) {
		r.emit(PhaseSwitch, "", &e)
	}})
	if err != nil {
		if ctx.Err() != nil {
			return ResultAborted, "aborted during the health gate; nothing was switched"
		}
		var refused *switcher.RefusedError
		if errors.As(err, &refused) {
			return ResultFailed, fmt.Sprintf("the new version never became healthy: %v; nothing was switched", err)
		}
		return ResultFailed, fmt.Sprintf("switch refused: %v; nothing was switched", err)
	}
	if rep.NoOp {
		return ResultFailed, fmt.Sprintf("%s was already active; nothing to deploy", r.to)
	}
	return d.watchThenStop(ctx, r, st, "")
}

// keepBaseline records the old (still active) target's answers over the last
// deploy.monitor, for the monitor window to compare the new target with.
func (d *Deployer) keepBaseline(r *run, st Settings) {
	base, took := d.activeWindow(r.from, st.Monitor)
	r.mu.Lock()
	r.baseline, r.baseTook = base, took
	r.mu.Unlock()
}

// watchThenStop runs the monitor window once the new target is active (switched to, or a
// promoted canary): it rolls back when a figure trips, and otherwise stops the old version.
// before says how the new target got there, for the final why.
func (d *Deployer) watchThenStop(ctx context.Context, r *run, st Settings, before string) (string, string) {
	// 3. Watch the new target against the baseline.
	ends := time.Now().Add(st.Monitor)
	r.mu.Lock()
	r.monitorEnds = ends
	base := r.baseline
	r.mu.Unlock()
	d.phase(r, PhaseMonitor, fmt.Sprintf("watching %s for %s against %s before it took over (error rate over %s, p95 over %s× the old and over %s)",
		r.to, st.Monitor, r.from, percent(st.Limits.MaxErrorRate), strconv.FormatFloat(st.Limits.MaxLatencyRatio, 'g', -1, 64), st.Limits.LatencyFloor))
	verdict, err := d.monitor(ctx, r, st, base, ends)
	switch {
	case err != nil && ctx.Err() != nil:
		return d.rollback(r, ResultAborted, "aborted during the monitor window")
	case err != nil:
		return ResultFailed, err.Error()
	case verdict.Trip:
		return d.rollback(r, ResultRolledBack, verdict.Reason())
	}

	// 4. Stop the old version to give its memory back.
	return d.stopOld(r, st, fmt.Sprintf("%s%s watched for %s without a problem", before, r.to, st.Monitor))
}

// stopOld runs deploy.stop for the old version once the new one serves alone; watched says
// how the new one was found good.
func (d *Deployer) stopOld(r *run, st Settings, watched string) (string, string) {
	fromHost, fromPort := splitTarget(r.from)
	if st.Stop == "" {
		d.phase(r, PhaseStop, fmt.Sprintf("deploy.stop is empty: %s stays up as the standby", r.from))
		return ResultSucceeded, watched
	}
	d.phase(r, PhaseStop, fmt.Sprintf("stopping the old version: %s", fill(st.Stop, fromHost, fromPort)))
	err := runCommand(context.Background(), fill(st.Stop, fromHost, fromPort), st.StartTimeout, d.log, func(line string) { r.emit(PhaseStop, line, nil) })
	d.sw.MarkStopped(r.from)
	if err != nil {
		return ResultSucceeded, fmt.Sprintf("%s, but deploy.stop failed: %v (stop %s by hand)", watched, err, r.from)
	}
	return ResultSucceeded, fmt.Sprintf("%s; %s stopped", watched, r.from)
}

// monitor samples the new target every tick until ends, judging each deploy.sustain window.
func (d *Deployer) monitor(ctx context.Context, r *run, st Settings, base proxy.StatsSnapshot, ends time.Time) (Verdict, error) {
	var seen samples
	seen.keep = st.Sustain
	t := time.NewTicker(d.tick)
	defer t.Stop()
	for {
		if active := d.sw.Status().Active.Addr; active != r.to {
			return Verdict{}, fmt.Errorf("someone switched to %s during the monitor window; stopped watching", active)
		}
		if stats, ok := d.sw.TargetStats(r.to); ok {
			seen.add(time.Now(), stats)
		}
		if window, took := seen.window(st.Sustain); took >= st.Sustain {
			if v := Judge(base, window, st.Limits); v.Trip {
				return v, nil
			}
		}
		if !time.Now().Before(ends) {
			return Verdict{}, nil
		}
		select {
		case <-ctx.Done():
			return Verdict{}, ctx.Err()
		case <-t.C:
		}
	}
}

// rollback sends traffic back to the old target; result and why say why.
func (d *Deployer) rollback(r *run, result, why string) (string, string) {
	if d.closing.Load() {
		// routied is stopping (or upgrading): leave traffic where it is.
		return ResultInterrupted, why
	}
	d.phase(r, PhaseRollback, fmt.Sprintf("rolling back to %s: %s", r.from, why))
	// A deploy that decided to roll back finishes doing so even if its caller left.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.sw.Rollback(ctx, switcher.SwitchOptions{Progress: func(e switcher.Event) { r.emit(PhaseRollback, "", &e) }}); err != nil {
		return ResultFailed, fmt.Sprintf("%s, and the rollback to %s failed: %v", why, r.from, err)
	}
	return result, why + "; traffic is back on " + r.from
}

// fill puts host and port into an operator's command.
func fill(command, host string, port int) string {
	return strings.NewReplacer("{port}", strconv.Itoa(port), "{host}", host).Replace(command)
}

func splitTarget(addr string) (string, int) {
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return host, port
}
