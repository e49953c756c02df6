package switcher

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
)

// A canary runs a new version next to the active one on a share of the clients (the proxy
// pins each client to its side with a cookie). It ends one of two ways: Promote makes it
// active, exactly as a switch to it would (the old active drains and becomes the standby),
// or AbortCanary sends its clients back to the active target and drains it. While it runs,
// a switch, a rollback or a second canary is refused with a *CanaryRunningError: there is
// one split at a time, and "switch" would leave it undefined which of the three targets
// ends up where.

// Canary sends weight percent (1 to 99) of the clients to target once it passes the health
// gate, as a switch does (opts.Wait, opts.Force); the active target keeps the rest. A canary
// of the target already taking a share only changes its weight, as SetCanaryWeight does.
func (s *Switcher) Canary(ctx context.Context, target string, weight int, opts SwitchOptions) (Report, error) {
	st := s.current()
	addr, err := ParseTarget(target, st.Host)
	if err != nil {
		return Report{}, err
	}
	if weight < 1 || weight > 99 {
		return Report{}, &WeightError{Weight: weight}
	}
	s.mu.Lock()
	switch {
	case s.gating != "":
		s.mu.Unlock()
		return Report{}, s.inProgress()
	case s.canary != nil && s.canary.target.Addr() == addr:
		s.mu.Unlock()
		return s.SetCanaryWeight(weight)
	case s.canary != nil:
		s.mu.Unlock()
		return Report{}, s.canaryRunning(opCanary)
	case s.active.target.Addr() == addr:
		s.mu.Unlock()
		return Report{}, &ActiveTargetError{Target: addr}
	}
	s.gating, s.gatingWhat = addr, opCanary
	s.mu.Unlock()

	gated, err := s.gateUnlessForced(ctx, opCanary, addr, st, opts)
	if err != nil {
		return Report{}, err
	}

	s.mu.Lock()
	e, err := s.takeTarget(addr, gated)
	if err != nil {
		s.gating = ""
		s.mu.Unlock()
		return Report{}, err
	}
	// A fresh salt: this canary takes a different slice of the clients than the last one.
	s.canary, s.weight, s.salt = e, weight, rand.Uint32N(proxy.ShareScale)
	s.proxy.SetCanary(e.target, s.split())
	s.gating = ""
	from := s.active.target.Addr()
	if err := s.save(); err != nil {
		s.log.Error("canary started, but the state was not saved: a restart would serve the active target alone", "err", err)
	}
	s.mu.Unlock()

	s.log.Info("canary started", "canary", addr, "weight", weight, "active", from, "forced", opts.Force)
	emit(opts.Progress, Event{Kind: EventCanary, From: from, To: addr, Weight: weight})
	return Report{From: from, To: addr, Weight: weight, Forced: opts.Force}, nil
}

// SetCanaryWeight changes the running canary's share to weight percent (1 to 99). Clients
// already on the canary stay there when the weight rises; when it falls, some go back.
func (s *Switcher) SetCanaryWeight(weight int) (Report, error) {
	if weight < 1 || weight > 99 {
		return Report{}, &WeightError{Weight: weight}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.canary == nil {
		return Report{}, ErrNoCanary
	}
	rep := Report{From: s.active.target.Addr(), To: s.canary.target.Addr(), Weight: weight}
	if s.weight == weight {
		rep.NoOp = true
		return rep, nil
	}
	was := s.weight
	s.weight = weight
	s.proxy.SetCanary(s.canary.target, s.split())
	if err := s.save(); err != nil {
		s.log.Error("canary weight changed, but the state was not saved: a restart would use the old weight", "err", err)
	}
	s.log.Info("canary weight changed", "canary", rep.To, "from_weight", was, "weight", weight)
	return rep, nil
}

// Promote makes the canary the active target. It probes the canary once first (not with
// opts.Force), as a rollback probes the standby: the canary has been probed and has served
// all along. Then it is a switch: the old active target drains and becomes the standby.
func (s *Switcher) Promote(ctx context.Context, opts SwitchOptions) (rep Report, err error) {
	defer func() { s.counters.switches.count(rep, err) }()
	st := s.current()
	s.mu.Lock()
	if s.gating != "" {
		s.mu.Unlock()
		return Report{}, s.inProgress()
	}
	if s.canary == nil {
		s.mu.Unlock()
		return Report{}, ErrNoCanary
	}
	addr := s.canary.target.Addr()
	// Gating also holds off an abort or another canary until the swap.
	s.gating, s.gatingWhat = addr, opPromote
	s.mu.Unlock()
	return s.swapAfterOneProbe(ctx, addr, st, opts, func(r health.Result) error {
		return &RefusedError{Target: addr, Last: r, Passes: 0, Needed: 1, What: opPromote}
	})
}

// AbortCanary sends every new request to the active target again and drains the canary as
// a switch drains the target it leaves: its requests in flight finish (up to
// drain.timeout), its streams get drain.streams. It returns when the requests are done, or
// when ctx ends (the drain goes on).
func (s *Switcher) AbortCanary(ctx context.Context, opts SwitchOptions) (Report, error) {
	st := s.current()
	s.mu.Lock()
	if s.gating != "" {
		s.mu.Unlock()
		return Report{}, s.inProgress()
	}
	c := s.canary
	if c == nil {
		s.mu.Unlock()
		return Report{}, ErrNoCanary
	}
	// After EndCanary, a request still choosing sees the route change and picks again, so
	// the drain below counts every request the canary will ever get.
	s.proxy.EndCanary()
	waited := c.target.InFlight()
	s.canary, s.weight, s.salt = nil, 0, 0
	if err := s.save(); err != nil {
		s.log.Error("canary aborted, but the state was not saved: a restart would split the clients again", "err", err)
	}
	drained := s.retire(c, st, waited)
	from, to := c.target.Addr(), s.active.target.Addr()
	s.mu.Unlock()

	s.log.Info("canary aborted", "canary", from, "active", to, "in_flight_on_canary", waited)
	emit(opts.Progress, Event{Kind: EventCanaryAborted, From: from, To: to})
	return Report{From: from, To: to, Drain: awaitDrain(ctx, drained, from, opts.Progress)}, nil
}

// restoreCanary takes the canary back from the saved state at start-up, without a health
// gate: it passed one when it started, and the active target is not gated at start-up
// either. Called from New, before the Switcher is shared.
func (s *Switcher) restoreCanary(saved Saved) {
	switch {
	case saved.Canary == saved.Active:
		s.log.Error("ignoring the saved canary: it is the active target", "canary", saved.Canary, "file", s.store.Path())
		return
	case saved.Weight < 1 || saved.Weight > 99:
		s.log.Error("ignoring the saved canary: its weight is not 1 to 99", "canary", saved.Canary, "weight", saved.Weight, "file", s.store.Path())
		return
	}
	e, err := s.entryFor(saved.Canary)
	if err != nil {
		s.log.Error("ignoring the saved canary", "canary", saved.Canary, "err", err)
		return
	}
	s.canary, s.weight, s.salt = e, saved.Weight, saved.CanarySalt%proxy.ShareScale
	s.proxy.SetCanary(e.target, s.split())
	s.log.Info("restored the canary", "canary", saved.Canary, "weight", saved.Weight, "active", saved.Active)
}

// split is the proxy's view of the canary's weight. Call with mu held.
func (s *Switcher) split() proxy.Split {
	return proxy.Split{Share: uint32(s.weight) * proxy.ShareScale / 100, Salt: s.salt}
}

// canaryRunning is the refusal of refused while the canary runs. Call with mu held.
func (s *Switcher) canaryRunning(refused string) error {
	return &CanaryRunningError{Canary: s.canary.target.Addr(), Weight: s.weight, Refused: refused}
}

// save writes the state as it is now. Call with mu held.
func (s *Switcher) save() error {
	saved := Saved{Active: s.active.target.Addr(), Updated: time.Now()}
	if s.standby != nil {
		saved.Standby = s.standby.target.Addr()
	}
	if s.canary != nil {
		saved.Canary, saved.Weight, saved.CanarySalt = s.canary.target.Addr(), s.weight, s.salt
	}
	return s.store.Save(saved)
}
