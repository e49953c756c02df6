// Package deploy runs a whole deploy inside routied: start the new version on the idle port,
// health-gate it, switch, watch it against the old version, and then stop the old one, or
// roll back on its own when the new one does worse. It runs in the daemon, so a dropped SSH
// session does not abort it; the CLI only follows it.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
)

// Settings are the [deploy] section plus what they need of [upstream].
type Settings struct {
	// Host is upstream.host: a bare port refers to it.
	Host string
	// Ports are the slots a deploy alternates between, e.g. [8080, 8081].
	Ports []int
	// Start and Stop are shell commands with {port} (and {host}) filled in; "" skips the step.
	Start, Stop string
	// StartTimeout bounds Start and Stop.
	StartTimeout time.Duration
	// Monitor is how long the new target is watched before the old one is stopped.
	Monitor time.Duration
	// Sustain is the window a figure must stay bad over before a rollback.
	Sustain time.Duration
	// Limits decide when the new target is worse.
	Limits Limits
}

// Switcher is what a deploy drives; *switcher.Switcher implements it.
type Switcher interface {
	Switch(ctx context.Context, target string, opts switcher.SwitchOptions) (switcher.Report, error)
	Rollback(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error)
	Status() switcher.Status
	// TargetStats returns the answer counters of the target at addr, if the switcher holds it.
	TargetStats(addr string) (proxy.StatsSnapshot, bool)
	// MarkStopped records that the standby's app was stopped, so a rollback says to start
	// it first.
	MarkStopped(addr string)
	// Canary, SetCanaryWeight, Promote and AbortCanary drive a canary deploy (canary.go).
	Canary(ctx context.Context, target string, weight int, opts switcher.SwitchOptions) (switcher.Report, error)
	SetCanaryWeight(weight int) (switcher.Report, error)
	Promote(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error)
	AbortCanary(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error)
}

// Phases of a deploy, in order.
const (
	PhaseStart    = "start"    // running deploy.start
	PhaseSwitch   = "switch"   // health gate, swap, drain
	PhaseMonitor  = "monitor"  // watching the new target
	PhaseStop     = "stop"     // running deploy.stop on the old port
	PhaseRollback = "rollback" // going back to the old target
	PhaseDone     = "done"
)

// Event is one step of a deploy, for the CLI that follows it.
type Event struct {
	At      time.Time `json:"at"`
	Phase   string    `json:"phase"`
	Message string    `json:"message"`
	// Switch is a switch step (probe, swap, drained) during the switch phase.
	Switch *switcher.Event `json:"switch,omitempty"`
	// Done is the final record, on the last event.
	Done *Record `json:"done,omitempty"`
}

// Request asks for a deploy.
type Request struct {
	// To is the target to deploy to; "" picks the idle port.
	To string
	// NoStart skips deploy.start: the operator started the new version already.
	NoStart bool
	// Canary, when not empty, makes this a canary deploy: the new version takes these
	// rising shares of the clients in turn (percent, 1 to 99), each watched for Step, and
	// is then promoted (canary.go). Empty: switch at once and watch for deploy.monitor.
	Canary []int
	// Step is how long each canary step is watched; 0 is deploy.monitor.
	Step time.Duration
	// Who asked, for the history.
	Who string
}

// ErrBusy refuses a deploy while another runs.
var ErrBusy = errors.New("a deploy is in progress; follow it with routiectl status, or stop it with routiectl deploy --abort")

// ErrNone answers an abort when no deploy runs.
var ErrNone = errors.New("no deploy is in progress")

// Deployer runs at most one deploy at a time. Create it with New, run its sampler with Run.
type Deployer struct {
	sw       Switcher
	history  *History
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	tick     time.Duration // how often the monitor and the baseline sampler look; 250ms in production

	// baseline samples the active target all along, so a deploy can compare the new target
	// with what the old one did before the switch.
	baseMu   sync.Mutex
	baseAddr string
	base     samples

	mu  sync.Mutex // guards cur
	cur *run
	wg  sync.WaitGroup
	// closing is set when routied stops: a deploy in progress then ends as interrupted,
	// without rolling back, and the active target stays as saved.
	closing atomic.Bool
}

// run is one deploy in progress.
type run struct {
	id     int
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex // guards the fields below
	record      Record
	events      []Event
	followers   map[chan struct{}]struct{}
	monitorEnds time.Time
	from, to    string
	baseline    proxy.StatsSnapshot // the old target before the switch
	baseTook    time.Duration
	canary      *canaryWatch // a canary deploy's walk; nil for a plain deploy
}

// New returns a Deployer over sw that keeps its history in h.
func New(sw Switcher, h *History, st Settings, log *slog.Logger) *Deployer {
	d := &Deployer{sw: sw, history: h, log: log, tick: 250 * time.Millisecond}
	d.Update(st)
	return d
}

// Update replaces the settings; a deploy in progress keeps the ones it started with.
func (d *Deployer) Update(st Settings) {
	d.settings.Store(&st)
	d.baseMu.Lock()
	d.base.keep = max(st.Monitor, time.Minute)
	d.baseMu.Unlock()
}

// SetTick changes how often the monitor and the baseline sampler look (tests use a few ms).
func (d *Deployer) SetTick(t time.Duration) { d.tick = t }

// History returns the past deploys, oldest first.
func (d *Deployer) History() []Record { return d.history.List() }

// Run samples the active target until ctx ends; then it waits for a deploy in progress to
// notice and stop.
func (d *Deployer) Run(ctx context.Context) {
	t := time.NewTicker(d.tick)
	defer t.Stop()
	for {
		d.sampleActive()
		select {
		case <-ctx.Done():
			d.closing.Store(true)
			d.mu.Lock()
			if d.cur != nil {
				d.cur.cancel()
			}
			d.mu.Unlock()
			d.wg.Wait()
			return
		case <-t.C:
		}
	}
}

func (d *Deployer) sampleActive() {
	addr := d.sw.Status().Active.Addr
	stats, ok := d.sw.TargetStats(addr)
	if !ok {
		return
	}
	d.baseMu.Lock()
	defer d.baseMu.Unlock()
	if addr != d.baseAddr {
		d.baseAddr, d.base.list = addr, nil
	}
	d.base.add(time.Now(), stats)
}

// Start begins a deploy and returns its ID at once; Follow shows its progress.
func (d *Deployer) Start(req Request) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur != nil {
		return 0, ErrBusy
	}
	st := *d.settings.Load()
	if err := CheckCanarySteps(req.Canary); err != nil {
		return 0, err
	}
	if req.Step < 0 || (req.Step > 0 && len(req.Canary) == 0) {
		return 0, fmt.Errorf("a step of %s: the step is each canary step's time, positive and with canary steps (such as 5,25,50)", req.Step)
	}
	from := d.sw.Status().Active.Addr
	to, err := d.pick(req.To, from, st)
	if err != nil {
		return 0, err
	}
	rec := Record{Started: time.Now(), Who: req.Who, From: from, To: to, Result: ResultRunning, Phase: PhaseStart, Canary: req.Canary}
	id, err := d.history.begin(rec)
	if err != nil {
		return 0, fmt.Errorf("cannot record the deploy: %w", err)
	}
	rec.ID = id
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{id: id, cancel: cancel, done: make(chan struct{}), record: rec, followers: map[chan struct{}]struct{}{}, from: from, to: to}
	d.cur = r
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		d.deploy(ctx, r, req, st)
		d.mu.Lock()
		d.cur = nil
		d.mu.Unlock()
		close(r.done)
	}()
	return id, nil
}

// pick returns the target to deploy to: to if given, else the configured port that is not
// active.
func (d *Deployer) pick(to, from string, st Settings) (string, error) {
	if to != "" {
		addr, err := switcher.ParseTarget(to, st.Host)
		if err != nil {
			return "", err
		}
		if addr == from {
			return "", fmt.Errorf("%s is the active target already; deploy to the idle one (upstream.ports %v)", addr, st.Ports)
		}
		return addr, nil
	}
	_, activePort, _ := net.SplitHostPort(from)
	for _, p := range st.Ports {
		if strconv.Itoa(p) != activePort {
			return net.JoinHostPort(st.Host, strconv.Itoa(p)), nil
		}
	}
	return "", fmt.Errorf("no idle port: upstream.ports %v has none besides the active %s; list two ports, or pass --to TARGET", st.Ports, from)
}

// Abort stops the deploy in progress; if it switched already, traffic goes back.
func (d *Deployer) Abort() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil {
		return 0, ErrNone
	}
	d.cur.cancel()
	return d.cur.id, nil
}

// Follow calls onEvent with every event of deploy id, those that happened already first,
// until the deploy ends or ctx does, and returns its record as it stands then.
func (d *Deployer) Follow(ctx context.Context, id int, onEvent func(Event)) (Record, error) {
	d.mu.Lock()
	r := d.cur
	d.mu.Unlock()
	if r == nil || r.id != id {
		for _, rec := range d.history.List() {
			if rec.ID == id {
				return rec, nil
			}
		}
		return Record{}, fmt.Errorf("no deploy %d", id)
	}
	wake := make(chan struct{}, 1)
	r.mu.Lock()
	r.followers[wake] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.followers, wake)
		r.mu.Unlock()
	}()
	sent := 0
	for {
		r.mu.Lock()
		pending := slices.Clone(r.events[sent:])
		rec := r.record
		r.mu.Unlock()
		for _, e := range pending {
			onEvent(e)
		}
		sent += len(pending)
		select {
		case <-wake:
		case <-r.done:
			r.mu.Lock()
			rest := slices.Clone(r.events[sent:])
			rec = r.record
			r.mu.Unlock()
			for _, e := range rest {
				onEvent(e)
			}
			return rec, nil
		case <-ctx.Done():
			return rec, ctx.Err()
		}
	}
}

// Status is the deploy in progress, for `routiectl status`.
type Status struct {
	Record
	// MonitorLeft is the time left in the monitor window.
	MonitorLeft time.Duration `json:"monitor_left,omitempty"`
	// New and Old compare the two targets over the last deploy.sustain. During a canary
	// deploy's steps, New is the canary and Old the active target, over the same window.
	New *Figures `json:"new,omitempty"`
	Old *Figures `json:"old,omitempty"`
	// Canary is where a canary deploy's walk stands; absent for a plain deploy.
	Canary *CanaryStatus `json:"canary,omitempty"`
}

// Figures are one target's recent answers.
type Figures struct {
	Addr      string        `json:"addr"`
	Rate      float64       `json:"requests_per_second"`
	ErrorRate float64       `json:"error_rate"`
	P95       time.Duration `json:"p95"`
}

// Current returns the deploy in progress, or nil.
func (d *Deployer) Current() *Status {
	d.mu.Lock()
	r := d.cur
	d.mu.Unlock()
	if r == nil {
		return nil
	}
	st := *d.settings.Load()
	r.mu.Lock()
	s := &Status{Record: r.record}
	if r.canary != nil && r.record.Phase != PhaseMonitor && r.record.Phase != PhaseStop {
		r.canaryStatus(s, st.Sustain)
		r.mu.Unlock()
		return s
	}
	if !r.monitorEnds.IsZero() {
		s.MonitorLeft = max(0, time.Until(r.monitorEnds)).Round(time.Second)
	}
	from, to := r.from, r.to
	base, baseTook := r.baseline, r.baseTook
	r.mu.Unlock()
	s.Old = figures(from, base, baseTook)
	snap, took := d.activeWindow(to, st.Sustain)
	s.New = figures(to, snap, took)
	return s
}

// figures summarizes what snap counted over took.
func figures(addr string, snap proxy.StatsSnapshot, took time.Duration) *Figures {
	f := &Figures{Addr: addr, P95: snap.Quantile(0.95)}
	if n := snap.Requests(); n > 0 {
		f.ErrorRate = float64(snap.Errors()) / float64(n)
		if took > 0 {
			f.Rate = float64(n) / took.Seconds()
		}
	}
	return f
}

// activeWindow returns what addr answered over the last window while active.
func (d *Deployer) activeWindow(addr string, window time.Duration) (proxy.StatsSnapshot, time.Duration) {
	d.baseMu.Lock()
	defer d.baseMu.Unlock()
	if d.baseAddr != addr {
		return proxy.StatsSnapshot{}, 0
	}
	return d.base.window(window)
}

// emit appends an event and wakes the followers.
func (r *run) emit(phase, message string, sw *switcher.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, Event{At: time.Now(), Phase: phase, Message: message, Switch: sw})
	for wake := range r.followers {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// RollbackStart starts the standby's app with deploy.start (a deploy stopped it) and then
// switches back to it through the health gate, as `routiectl rollback --start` asks.
func (d *Deployer) RollbackStart(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error) {
	st := *d.settings.Load()
	sb := d.sw.Status().Standby
	if sb == nil {
		return switcher.Report{}, switcher.ErrNoStandby
	}
	if st.Start == "" {
		return switcher.Report{}, fmt.Errorf("deploy.start is empty, so routied cannot start %s; start it yourself and run routiectl rollback", sb.Addr)
	}
	host, port := splitTarget(sb.Addr)
	line := fill(st.Start, host, port)
	d.log.Info("starting the standby for a rollback", "standby", sb.Addr, "command", line)
	if err := runCommand(ctx, line, st.StartTimeout, d.log, func(string) {}); err != nil {
		return switcher.Report{}, fmt.Errorf("rollback --start: %w", err)
	}
	return d.sw.Switch(ctx, sb.Addr, opts)
}
