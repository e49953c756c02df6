package switcher

import (
	"errors"
	"sync/atomic"
	"time"
)

// Counters are the switcher's totals since it was made. They only grow, so a monitor can
// take the difference of two readings (Prometheus counters are read this way).
type Counters struct {
	// Switches and Rollbacks count every call of Switch and Rollback by its outcome; a
	// promotion of a canary (Promote) counts as a switch.
	Switches, Rollbacks Outcomes
	// Drains counts the drains of retired targets that ran to their end; a drain cut short
	// because its target became active again is not counted.
	Drains uint64
	// DrainTime is the total time those drains waited for in-flight requests.
	DrainTime time.Duration
	// DrainCancelled counts the requests cancelled with a 504 because drain.timeout passed.
	DrainCancelled uint64
	// StreamsClosed counts the WebSocket connections and event streams closed because
	// drain.streams passed.
	StreamsClosed uint64
}

// Outcomes count switches (or rollbacks) by how they ended. Each call counts once.
type Outcomes struct {
	// OK: traffic moved to the target.
	OK uint64
	// Refused: routied declined by its rules and traffic stayed: the health gate failed,
	// another switch was in progress, there was no standby to roll back to, a deploy
	// stopped the standby's app, or a canary runs.
	Refused uint64
	// Failed: the switch could not be carried out: the target did not parse or could not be
	// made, or the caller went away before the target was healthy.
	Failed uint64
	// NoOp: the target was already active.
	NoOp uint64
}

// counters are the atomics behind Counters; the switcher adds to them once per switch,
// rollback or drain, never on the request path.
type counters struct {
	switches, rollbacks outcomes
	drains              atomic.Uint64
	drainNs             atomic.Int64
	drainCancelled      atomic.Uint64
	streamsClosed       atomic.Uint64
}

type outcomes struct{ ok, refused, failed, noop atomic.Uint64 }

// count records how one switch or rollback ended.
func (o *outcomes) count(rep Report, err error) {
	var refused *RefusedError
	var inProgress *InProgressError
	var stopped *StoppedError
	var canary *CanaryRunningError
	switch {
	case err == nil && rep.NoOp:
		o.noop.Add(1)
	case err == nil:
		o.ok.Add(1)
	case errors.As(err, &refused), errors.As(err, &inProgress), errors.As(err, &stopped), errors.As(err, &canary), errors.Is(err, ErrNoStandby):
		o.refused.Add(1)
	default:
		o.failed.Add(1)
	}
}

func (o *outcomes) load() Outcomes {
	return Outcomes{OK: o.ok.Load(), Refused: o.refused.Load(), Failed: o.failed.Load(), NoOp: o.noop.Load()}
}

// Counters returns the switcher's totals.
func (s *Switcher) Counters() Counters {
	c := &s.counters
	return Counters{
		Switches:       c.switches.load(),
		Rollbacks:      c.rollbacks.load(),
		Drains:         c.drains.Load(),
		DrainTime:      time.Duration(c.drainNs.Load()),
		DrainCancelled: c.drainCancelled.Load(),
		StreamsClosed:  c.streamsClosed.Load(),
	}
}
