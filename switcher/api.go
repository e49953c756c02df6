package switcher

import (
	"errors"
	"fmt"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
)

// Settings are the parts of the configuration the switcher uses. They can change while it
// runs (Update); a switch in progress keeps the settings it started with.
type Settings struct {
	// Host is the host a bare port target refers to, e.g. "127.0.0.1".
	Host string
	// Probe says how a target is checked.
	Probe health.Probe
	// Interval is the time between probes of the active and standby targets and between
	// probes of a switch's health gate.
	Interval time.Duration
	// Passes is how many consecutive passing probes a switch needs.
	Passes int
	// Wait is how long a switch waits for those passes by default.
	Wait time.Duration
	// DrainTimeout bounds how long in-flight requests on a retired target may run.
	DrainTimeout time.Duration
	// StreamGrace is how long streams on a retired target stay open.
	StreamGrace time.Duration
}

// SwitchOptions adjust one switch.
type SwitchOptions struct {
	// Wait overrides Settings.Wait for this switch when positive.
	Wait time.Duration
	// Force skips the health gate.
	Force bool
	// Progress, when set, is called with each step as it happens, on the switching goroutine.
	Progress func(Event)
}

// Event kinds, in the order a switch produces them. A canary produces probes and then
// EventCanary; a promotion a probe, EventSwap and EventDrained; an abort EventCanaryAborted
// and EventDrained.
const (
	EventProbe   = "probe"   // one probe of the health gate finished (Probe set)
	EventSwap    = "swap"    // the new target is active (From, To set)
	EventDrained = "drained" // the old target's in-flight requests are done (Drain set)
	// EventCanary: the canary To takes Weight percent of the clients, the active From the
	// rest.
	EventCanary = "canary"
	// EventCanaryAborted: every new request goes to the active To again; the canary From
	// drains.
	EventCanaryAborted = "canary_aborted"
)

// Event is one step of a switch, for live progress.
type Event struct {
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	// Probe is the probe's result, with the number of consecutive passes so far.
	Probe  *health.Result `json:"probe,omitempty"`
	Passes int            `json:"passes,omitempty"`
	Needed int            `json:"needed,omitempty"`
	From   string         `json:"from,omitempty"`
	To     string         `json:"to,omitempty"`
	// Weight is the canary's share in percent, for EventCanary.
	Weight int          `json:"weight,omitempty"`
	Drain  *DrainReport `json:"drain,omitempty"`
}

// DrainReport says what the retired target's drain waited for.
type DrainReport struct {
	// Waited is the number of HTTP requests in flight on the old target at the swap.
	Waited int64 `json:"waited"`
	// Cancelled is how many of them were cancelled with a 504 at drain.timeout.
	Cancelled int64 `json:"cancelled"`
	// Took is how long the wait lasted.
	Took time.Duration `json:"took"`
	// Streams is the number of streams left open on the old target for drain.streams.
	Streams int64 `json:"streams"`
	// Aborted is true when the old target became active again before its drain ended.
	Aborted bool `json:"aborted,omitempty"`
}

// Report is the outcome of a switch, rollback or canary operation that did not fail.
type Report struct {
	// From and To are the previous and the new active target. For a canary or a change
	// of its weight, From is the active target and To the canary; for an aborted canary,
	// From is the canary and To the active target, which keeps everything.
	From string `json:"from"`
	To   string `json:"to"`
	// Weight is the canary's share in percent after a canary or a change of its weight.
	Weight int `json:"weight,omitempty"`
	// NoOp is true when To was already active (or the canary already had that weight);
	// nothing changed.
	NoOp bool `json:"noop,omitempty"`
	// Forced is true when the health gate was skipped.
	Forced bool `json:"forced,omitempty"`
	// Drain is what the old target's drain waited for; nil for a no-op.
	Drain *DrainReport `json:"drain,omitempty"`
}

// Status is a snapshot of the switcher.
type Status struct {
	Active  TargetStatus  `json:"active"`
	Standby *TargetStatus `json:"standby,omitempty"`
	// Canary is the target taking Weight percent of the clients, the active one the rest;
	// nil when no canary runs.
	Canary *TargetStatus `json:"canary,omitempty"`
	Weight int           `json:"weight,omitempty"`
	// Draining lists retired targets that still have work in flight.
	Draining []TargetStatus `json:"draining,omitempty"`
	// Switching is the target a switch is health-gating now, "" when none.
	Switching string `json:"switching,omitempty"`
	// Since is when the active target became active.
	Since time.Time `json:"since"`
}

// TargetStatus describes one target.
type TargetStatus struct {
	Addr     string         `json:"addr"`
	Health   health.Health  `json:"health"`
	Last     *health.Result `json:"last_probe,omitempty"`
	InFlight int64          `json:"in_flight"`
	Streams  int64          `json:"streams"`
	Conns    int64          `json:"conns"`
	Served   uint64         `json:"served"`
	// Stopped is true when a deploy stopped this target's app after it was retired; a
	// rollback to it needs the app started first.
	Stopped bool `json:"stopped,omitempty"`
}

// Role is what a target is to the switcher.
type Role string

// The roles of the targets the switcher holds.
const (
	RoleActive   Role = "active"   // receives new requests
	RoleCanary   Role = "canary"   // receives its weight's share of the clients
	RoleStandby  Role = "standby"  // the rollback target, probed all along
	RoleDraining Role = "draining" // retired, finishing its work in flight
)

// KnownTarget is a target the switcher holds, with its live counters, for readers that
// report on every target.
type KnownTarget struct {
	// Target gives the counters: Stats, InFlight, Streams, Conns. Read them; the switcher
	// owns the target.
	Target *proxy.Target
	Role   Role
	Health health.Health
}

// ErrNoStandby is returned by Rollback when there is nothing to roll back to.
var ErrNoStandby = errors.New("no standby target to roll back to: nothing was switched since routied started with an empty state")

// InProgressError refuses a switch while another one is health-gating.
type InProgressError struct {
	Target string
	// What is health-gating: "switch" (also for "" and a rollback), "canary" or "promote".
	What string
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("%s in progress; wait for it to finish (or interrupt the routiectl running it) and try again", doing(e.What, e.Target))
}

// doing names an operation on target in messages.
func doing(what, target string) string {
	switch what {
	case opCanary:
		return "canary of " + target
	case opPromote:
		return "promotion of the canary " + target
	}
	return "switch to " + target
}

// The operations that health-gate a target, for messages.
const (
	opSwitch  = "switch"
	opCanary  = "canary"
	opPromote = "promote"
)

// RefusedError is a switch refused because the target did not pass its health gate.
type RefusedError struct {
	Target string
	// Last is the last probe's result.
	Last health.Result
	// Passes is how many consecutive passes the target had reached; Needed how many it needed.
	Passes, Needed int
	// Wait is the time that ran out.
	Wait time.Duration
	// Rollback is true when a rollback was refused: its one probe of the standby failed.
	Rollback bool
	// What was refused: "switch" (or ""), "canary", or "promote" (its one probe of the
	// canary failed).
	What string
}

func (e *RefusedError) Error() string {
	switch {
	case e.Rollback:
		return fmt.Sprintf("rollback to %s refused: the standby failed its probe (%s); start it, or use --force to switch anyway", e.Target, e.Last)
	case e.What == opPromote:
		return fmt.Sprintf("promotion of the canary %s refused: it failed its probe (%s); routiectl abort sends its clients back to the active target, or use --force to promote anyway", e.Target, e.Last)
	}
	return fmt.Sprintf("%s refused: not healthy after %s (%d of %d passes); last probe %s",
		doing(e.What, e.Target), e.Wait, e.Passes, e.Needed, e.Last)
}

// TargetError is a target the operator wrote that does not parse.
type TargetError struct {
	Input  string
	Reason string
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("target %q: %s; write a port such as 8081, or host:port such as 127.0.0.1:8081", e.Input, e.Reason)
}

// StoppedError refuses a rollback to a standby whose app a deploy stopped.
type StoppedError struct{ Target string }

func (e *StoppedError) Error() string {
	return fmt.Sprintf("the standby %s was stopped after the last deploy; start it first: routiectl rollback --start runs deploy.start for it (or start it yourself and retry)", e.Target)
}

// ErrNoCanary answers a promotion, an abort or a change of weight when no canary runs.
var ErrNoCanary = errors.New("no canary is running; start one with routiectl canary TARGET --weight 5")

// CanaryRunningError refuses a switch, a rollback or a second canary while a canary runs:
// the canary must end first, one way or the other.
type CanaryRunningError struct {
	// Canary is the canary's address, Weight its share in percent.
	Canary string
	Weight int
	// Refused is what was refused: "switch", "rollback" or "canary".
	Refused string
}

func (e *CanaryRunningError) Error() string {
	return fmt.Sprintf("%s refused: a canary of %s takes %d%% of the clients; end it first with routiectl promote (keep it) or routiectl abort (drop it)", e.Refused, e.Canary, e.Weight)
}

// WeightError is a canary weight out of range.
type WeightError struct{ Weight int }

func (e *WeightError) Error() string {
	return fmt.Sprintf("weight %d is out of range: a canary takes 1 to 99 percent of the clients (routiectl promote gives it all of them, routiectl abort none)", e.Weight)
}

// ActiveTargetError refuses a canary of the target that is already active.
type ActiveTargetError struct{ Target string }

func (e *ActiveTargetError) Error() string {
	return fmt.Sprintf("%s is the active target already; a canary runs the new version on another port, such as the standby's", e.Target)
}
