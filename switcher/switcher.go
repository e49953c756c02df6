// Package switcher owns which target is active and which stands by: the health-gated switch,
// the rollback, the drain of the retired target, and the state that survives a restart.
package switcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
)

// Switcher moves traffic between targets. Create it with New, run its health monitor with
// Run, and Close it on shutdown.
type Switcher struct {
	proxy    *proxy.Proxy
	checker  *health.Checker
	store    *Store
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	counters counters

	// stop ends background drains on Close; wg waits for them and for Run.
	stop     context.Context
	stopNow  context.CancelFunc
	wg       sync.WaitGroup
	closeOne sync.Once

	// mu guards the fields below. It is never held while probing or waiting for a drain,
	// so Status and a rollback stay quick while a switch gates or drains.
	mu      sync.Mutex
	known   map[string]*entry // active, standby, canary and targets still draining, by address
	active  *entry
	standby *entry
	// canary takes weight percent of the clients, picked by salt (proxy.Split); nil when
	// none runs. It may be the standby's entry too.
	canary *entry
	weight int
	salt   uint32
	since  time.Time
	gating string // the target a switch, rollback, canary or promotion is checking now
	// gatingWhat names the operation gating, for InProgressError.
	gatingWhat string
}

// entry is a target with what the switcher knows of it.
type entry struct {
	target *proxy.Target
	health health.State
	drain  *drainToken // non-nil while the target is being retired
	// stoppedAt is when a deploy recorded that it stopped this target's app (deploy.stop),
	// in Unix nanoseconds; 0 while it is not stopped. A probe that started after it and
	// passed clears it, since then someone started the app again; one that started before
	// (it ran while deploy.stop did) says nothing about that.
	stoppedAt atomic.Int64
}

// stopped reports whether a deploy stopped e's app and nobody started it since.
func (e *entry) stopped() bool { return e.stoppedAt.Load() != 0 }

// drainToken identifies one drain, so that a drain that ends late does not clear a newer one.
type drainToken struct{ cancel context.CancelFunc }

// New returns a Switcher that serves the saved active target at once, or initial ("host:port")
// when nothing is saved. A corrupt state file is logged with its path and routied goes on
// with initial.
func New(p *proxy.Proxy, checker *health.Checker, store *Store, st Settings, initial string, log *slog.Logger) (*Switcher, error) {
	s := &Switcher{proxy: p, checker: checker, store: store, log: log, known: map[string]*entry{}}
	s.stop, s.stopNow = context.WithCancel(context.Background())
	s.settings.Store(&st)

	activeAddr, standbyAddr := initial, ""
	saved, err := store.Load()
	loaded := err == nil
	switch {
	case err == nil:
		activeAddr, standbyAddr = saved.Active, saved.Standby
		log.Info("restored saved state", "active", saved.Active, "standby", saved.Standby, "file", store.Path())
	case errors.Is(err, fs.ErrNotExist):
		log.Info("no saved state; serving the initial target", "active", initial, "file", store.Path())
	default:
		log.Error("cannot use the saved state; serving the initial target", "err", err, "active", initial)
	}
	active, err := s.entryFor(activeAddr)
	if err != nil {
		return nil, fmt.Errorf("active target %q: %w", activeAddr, err)
	}
	s.active = active
	if standbyAddr != "" && standbyAddr != activeAddr {
		if s.standby, err = s.entryFor(standbyAddr); err != nil {
			log.Error("ignoring the saved standby", "standby", standbyAddr, "err", err)
		}
	}
	s.since = time.Now()
	p.SetActive(active.target)
	if loaded && saved.Canary != "" {
		s.restoreCanary(saved)
	}
	return s, nil
}

// Update replaces the settings; a switch already in progress keeps the ones it started with.
func (s *Switcher) Update(st Settings) { s.settings.Store(&st) }

func (s *Switcher) current() Settings { return *s.settings.Load() }

// entryFor returns the entry for addr, making one if needed. Call with mu held or before the
// Switcher is shared.
func (s *Switcher) entryFor(addr string) (*entry, error) {
	if e, ok := s.known[addr]; ok {
		return e, nil
	}
	t, err := s.proxy.NewTarget(addr)
	if err != nil {
		return nil, err
	}
	e := &entry{target: t}
	s.known[addr] = e
	return e, nil
}

// Switch makes target active once it passes the health gate (unless opts.Force), then waits
// until the old target's in-flight HTTP requests are done. Streams on the old target keep
// running for drain.streams after Switch returns.
func (s *Switcher) Switch(ctx context.Context, target string, opts SwitchOptions) (rep Report, err error) {
	defer func() { s.counters.switches.count(rep, err) }()
	st := s.current()
	addr, err := ParseTarget(target, st.Host)
	if err != nil {
		return Report{}, err
	}
	s.mu.Lock()
	if s.gating != "" {
		s.mu.Unlock()
		return Report{}, s.inProgress()
	}
	if s.canary != nil {
		s.mu.Unlock()
		return Report{}, s.canaryRunning(opSwitch)
	}
	if s.active.target.Addr() == addr {
		s.mu.Unlock()
		return Report{From: addr, To: addr, NoOp: true}, nil
	}
	s.gating, s.gatingWhat = addr, opSwitch
	s.mu.Unlock()

	gated, err := s.gateUnlessForced(ctx, opSwitch, addr, st, opts)
	if err != nil {
		return Report{}, err
	}
	return s.swap(ctx, addr, st, opts, gated)
}

// gateUnlessForced runs the health gate for op on addr (opts.Wait or health.wait) and returns
// its last, passing, probe; nil with opts.Force. On a refusal it releases the gate. Call it
// holding the gate.
func (s *Switcher) gateUnlessForced(ctx context.Context, op, addr string, st Settings, opts SwitchOptions) (*health.Result, error) {
	if opts.Force {
		return nil, nil
	}
	wait := st.Wait
	if opts.Wait > 0 {
		wait = opts.Wait
	}
	last, err := s.gate(ctx, op, addr, st, wait, opts.Progress)
	if err != nil {
		s.endGate()
		return nil, err
	}
	return &last, nil
}

// Rollback makes the standby active again. Unlike a switch it does not wait for several
// passes: the standby has been probed all along, so one fresh probe is enough (none with
// opts.Force).
func (s *Switcher) Rollback(ctx context.Context, opts SwitchOptions) (rep Report, err error) {
	defer func() { s.counters.rollbacks.count(rep, err) }()
	st := s.current()
	s.mu.Lock()
	if s.gating != "" {
		s.mu.Unlock()
		return Report{}, s.inProgress()
	}
	if s.canary != nil {
		s.mu.Unlock()
		return Report{}, s.canaryRunning("rollback")
	}
	if s.standby == nil {
		s.mu.Unlock()
		return Report{}, ErrNoStandby
	}
	addr := s.standby.target.Addr()
	if s.standby.stopped() && !opts.Force {
		s.mu.Unlock()
		return Report{}, &StoppedError{Target: addr}
	}
	s.gating, s.gatingWhat = addr, opSwitch
	s.mu.Unlock()
	return s.swapAfterOneProbe(ctx, addr, st, opts, func(r health.Result) error {
		return &RefusedError{Target: addr, Last: r, Passes: 0, Needed: 1, Rollback: true}
	})
}

// swapAfterOneProbe makes addr active after one passing probe (none with opts.Force): a
// standby or a canary has been probed all along, so one fresh look is enough. refused words
// the error for a failed probe. Call it holding the gate.
func (s *Switcher) swapAfterOneProbe(ctx context.Context, addr string, st Settings, opts SwitchOptions, refused func(health.Result) error) (Report, error) {
	if !opts.Force {
		r := s.probe(ctx, addr, st)
		emit(opts.Progress, Event{Kind: EventProbe, Probe: &r, Passes: passes(r), Needed: 1})
		if !r.Passed {
			s.endGate()
			return Report{}, refused(r)
		}
	}
	return s.swap(ctx, addr, st, opts, nil)
}

func passes(r health.Result) int {
	if r.Passed {
		return 1
	}
	return 0
}

func (s *Switcher) endGate() {
	s.mu.Lock()
	s.gating = ""
	s.mu.Unlock()
}

// inProgress is the refusal while another operation health-gates. Call with mu held.
func (s *Switcher) inProgress() error {
	return &InProgressError{Target: s.gating, What: s.gatingWhat}
}

// gate probes addr every interval until it passes st.Passes times in a row or wait runs out.
// It returns the last, passing, probe. what names the operation (opSwitch, opCanary) in
// its errors.
func (s *Switcher) gate(ctx context.Context, what, addr string, st Settings, wait time.Duration, progress func(Event)) (health.Result, error) {
	gateCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(st.Interval)
	defer tick.Stop()
	passes := 0
	var last health.Result
	for {
		r := s.probe(gateCtx, addr, st)
		if ctx.Err() != nil {
			return last, fmt.Errorf("%s cancelled before it was healthy: %w", doing(what, addr), ctx.Err())
		}
		if gateCtx.Err() != nil && !last.At.IsZero() {
			// The wait ran out during this probe and cut it short; the one before says more.
			return last, &RefusedError{Target: addr, Last: last, Passes: passes, Needed: st.Passes, Wait: wait, What: what}
		}
		last = r
		if last.Passed {
			passes++
		} else {
			passes = 0
		}
		emit(progress, Event{Kind: EventProbe, Probe: &last, Passes: passes, Needed: st.Passes})
		if passes >= st.Passes {
			return last, nil
		}
		select {
		case <-tick.C:
		case <-gateCtx.Done():
			if ctx.Err() != nil {
				return last, fmt.Errorf("%s cancelled before it was healthy: %w", doing(what, addr), ctx.Err())
			}
			return last, &RefusedError{Target: addr, Last: last, Passes: passes, Needed: st.Passes, Wait: wait, What: what}
		}
	}
}

// probe checks addr once and, if it is a known target, records the result.
func (s *Switcher) probe(ctx context.Context, addr string, st Settings) health.Result {
	r := s.checker.Check(ctx, addr, st.Probe)
	s.mu.Lock()
	e := s.known[addr]
	s.mu.Unlock()
	if e != nil {
		s.record(e, r)
	}
	return r
}

// takeTarget returns the entry for addr, which is about to receive traffic: made if the
// switcher did not hold it, given the health gate's last probe (a new target was not known
// while it was gated), and no longer draining if it was retired earlier (its requests in
// flight simply continue). Call with mu held.
func (s *Switcher) takeTarget(addr string, gated *health.Result) (*entry, error) {
	e, err := s.entryFor(addr)
	if err != nil {
		return nil, &TargetError{Input: addr, Reason: err.Error()}
	}
	if gated != nil {
		e.health.Record(*gated)
	}
	if e.drain != nil {
		e.drain.cancel()
		e.drain = nil
	}
	return e, nil
}

// swap makes addr active in one atomic step, records the new state and waits for the old
// target's in-flight requests. gated is the health gate's last probe, if there was one.
func (s *Switcher) swap(ctx context.Context, addr string, st Settings, opts SwitchOptions, gated *health.Result) (Report, error) {
	s.mu.Lock()
	next, err := s.takeTarget(addr, gated)
	if err != nil {
		s.gating = ""
		s.mu.Unlock()
		return Report{}, err
	}
	old, dropped := s.active, s.standby
	// One route for the proxy: the new active target, and no canary. A promotion is the
	// swap to the canary, so it ends the canary here; a switch or rollback never runs with
	// one (they are refused).
	s.proxy.SetActive(next.target)
	// What the old target still serves at the swap: the requests its drain waits for.
	waited := old.target.InFlight()
	s.active, s.standby, s.since = next, old, time.Now()
	s.canary, s.weight, s.salt = nil, 0, 0
	if dropped != nil && dropped != next && dropped != old && dropped.drain == nil {
		s.forget(dropped)
	}
	s.gating = ""
	if err := s.save(); err != nil {
		s.log.Error("switched, but the new state was not saved: a restart would serve the old target", "err", err)
	}
	drained := s.retire(old, st, waited)
	s.mu.Unlock()

	from, to := old.target.Addr(), next.target.Addr()
	s.log.Info("switched", "from", from, "to", to, "forced", opts.Force, "in_flight_on_old", waited)
	emit(opts.Progress, Event{Kind: EventSwap, From: from, To: to})
	return Report{From: from, To: to, Forced: opts.Force, Drain: awaitDrain(ctx, drained, from, opts.Progress)}, nil
}

// awaitDrain waits for the drain of from (retire's channel) and reports it as an event, or
// returns nil when the caller leaves first: the drain goes on in the background.
func awaitDrain(ctx context.Context, drained <-chan DrainReport, from string, progress func(Event)) *DrainReport {
	select {
	case d := <-drained:
		emit(progress, Event{Kind: EventDrained, From: from, Drain: &d})
		return &d
	case <-ctx.Done():
		return nil
	}
}

// retire starts draining old in the background and returns a channel that receives the
// report once its HTTP requests are done; waited is how many were in flight at the swap.
// Call with mu held.
func (s *Switcher) retire(old *entry, st Settings, waited int64) <-chan DrainReport {
	ctx, cancel := context.WithCancel(s.stop)
	token := &drainToken{cancel: cancel}
	old.drain = token
	done := make(chan DrainReport, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		t := old.target
		r := t.Drain(ctx, st.DrainTimeout)
		report := DrainReport{Waited: max(waited, r.Waited), Cancelled: r.Cancelled, Took: r.Took, Streams: t.Streams(), Aborted: r.Aborted}
		if !r.Aborted {
			// Counted before the report goes out, so Counters agrees with what Switch returned.
			s.counters.drains.Add(1)
			s.counters.drainNs.Add(int64(r.Took))
			s.counters.drainCancelled.Add(uint64(r.Cancelled))
		}
		done <- report
		if r.Aborted {
			return
		}
		if r.Cancelled > 0 {
			s.log.Warn("drain timeout: cancelled requests on the old target", "target", t.Addr(), "cancelled", r.Cancelled, "drain_timeout", st.DrainTimeout)
		}
		s.log.Info("drained", "target", t.Addr(), "waited_for", report.Waited, "took", r.Took.Round(time.Millisecond), "streams_left", report.Streams)
		if closed := t.DrainStreams(ctx, st.StreamGrace); closed > 0 {
			s.counters.streamsClosed.Add(uint64(closed))
			s.log.Info("closed streams at the end of drain.streams", "target", t.Addr(), "closed", closed, "drain_streams", st.StreamGrace)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if old.drain != token {
			return
		}
		old.drain = nil
		if old != s.active && old != s.standby && old != s.canary {
			s.forget(old)
		}
	}()
	return done
}

// forget drops a target that is neither active nor standby nor draining. Call with mu held.
func (s *Switcher) forget(e *entry) {
	delete(s.known, e.target.Addr())
	e.target.Close()
}

// record stores a probe result and logs a change of health once.
func (s *Switcher) record(e *entry, r health.Result) {
	if at := e.stoppedAt.Load(); r.Passed && at != 0 && r.At.UnixNano() > at {
		e.stoppedAt.CompareAndSwap(at, 0)
	}
	if !e.health.Record(r) {
		return
	}
	s.mu.Lock()
	role := "target"
	switch e {
	case s.active:
		role = "active"
	case s.canary:
		role = "canary"
	case s.standby:
		role = "standby"
	}
	s.mu.Unlock()
	if r.Passed {
		s.log.Info("target is up", "role", role, "target", r.Target, "probe", r.Detail)
	} else {
		s.log.Warn("target is down", "role", role, "target", r.Target, "probe", r.Detail)
	}
}

// Probe checks target once with the current settings.
func (s *Switcher) Probe(ctx context.Context, target string) (health.Result, error) {
	st := s.current()
	addr, err := ParseTarget(target, st.Host)
	if err != nil {
		return health.Result{}, err
	}
	return s.probe(ctx, addr, st), nil
}

// Run probes the active and the standby target every health interval until ctx ends.
func (s *Switcher) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		st := s.current()
		s.mu.Lock()
		watched := []*entry{s.active}
		if s.standby != nil {
			watched = append(watched, s.standby)
		}
		if s.canary != nil && s.canary != s.standby {
			watched = append(watched, s.canary)
		}
		s.mu.Unlock()
		var wg sync.WaitGroup
		for _, e := range watched {
			wg.Go(func() { s.record(e, s.checker.Check(ctx, e.target.Addr(), st.Probe)) })
		}
		wg.Wait()
		timer.Reset(st.Interval)
	}
}

// Close stops background drains, cancels what is still running on every target and closes
// their connections. Call it after the servers stopped accepting requests.
func (s *Switcher) Close() {
	s.closeOne.Do(func() {
		s.stopNow()
		s.wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.known {
			e.target.Close()
		}
	})
}

// Status returns a snapshot of the targets.
func (s *Switcher) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Active: describe(s.active), Switching: s.gating, Since: s.since}
	if s.standby != nil {
		sb := describe(s.standby)
		st.Standby = &sb
	}
	if s.canary != nil {
		c := describe(s.canary)
		st.Canary, st.Weight = &c, s.weight
	}
	for _, e := range s.known {
		if e != s.active && e != s.standby && e != s.canary && e.drain != nil {
			st.Draining = append(st.Draining, describe(e))
		}
	}
	return st
}

// Known returns every target the switcher holds now, in no particular order: the active one,
// the standby, and retired ones still draining. A forgotten target is never listed, so a
// reader that builds its view from Known at each read (the metrics) never reports a target
// that is gone.
func (s *Switcher) Known() []KnownTarget {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := make([]KnownTarget, 0, len(s.known))
	for _, e := range s.known {
		role := RoleDraining
		switch e {
		case s.active:
			role = RoleActive
		case s.canary: // before the standby: a canary is often the standby's port
			role = RoleCanary
		case s.standby:
			role = RoleStandby
		}
		known = append(known, KnownTarget{Target: e.target, Role: role, Health: e.health.Health()})
	}
	return known
}

func describe(e *entry) TargetStatus {
	t := e.target
	ts := TargetStatus{
		Addr:     t.Addr(),
		Health:   e.health.Health(),
		InFlight: t.InFlight(),
		Streams:  t.Streams(),
		Conns:    t.Conns(),
		Served:   t.Served(),
		Stopped:  e.stopped(),
	}
	if r, ok := e.health.Last(); ok {
		ts.Last = &r
	}
	return ts
}

func emit(progress func(Event), e Event) {
	if progress != nil {
		e.At = time.Now()
		progress(e)
	}
}

// OpenStreams returns the number of WebSocket connections and event streams open on all
// targets, for a shutdown that gives them time to finish.
func (s *Switcher) OpenStreams() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, e := range s.known {
		n += e.target.Streams()
	}
	return n
}
