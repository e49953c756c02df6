package deploy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routie/routie/deploy"
	"github.com/routie/routie/health"
	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
)

// startApp starts a stand-in for one version of the app, called name, on 127.0.0.1: healthy,
// with every failEach-th request to / answering 500 (0: none), and each taking delay longer.
func startApp(t *testing.T, name string, failEach int, delay time.Duration) *testrig.App {
	t.Helper()
	return testrig.StartApp(t, name, testrig.FailEach(failEach), testrig.Delay(delay))
}

// port is a's port as deploy.Settings.Ports holds it.
func port(a *testrig.App) int {
	p, _ := strconv.Atoi(a.Port())
	return p
}

// rig is routied's core on real sockets (testrig) with a deployer running on its switcher.
type rig struct {
	*testrig.Rig
	d *deploy.Deployer
}

func newRig(t *testing.T, active *testrig.App, st deploy.Settings) *rig {
	t.Helper()
	sts := testrig.FastSettings()
	sts.DrainTimeout = 5 * time.Second
	sts.StreamGrace = time.Second
	core := testrig.NewRig(t, active.Addr(), testrig.Options{Settings: sts})
	h, notes, err := deploy.OpenHistory(core.Dir)
	if err != nil || len(notes) > 0 {
		t.Fatal(err, notes)
	}
	d := deploy.New(core.Switcher, h, st, core.Log)
	d.SetTick(10 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &rig{Rig: core, d: d}
}

func settings(to *testrig.App) deploy.Settings {
	return deploy.Settings{
		Host: "127.0.0.1", Ports: []int{port(to)}, StartTimeout: 5 * time.Second,
		Monitor: 1500 * time.Millisecond, Sustain: 300 * time.Millisecond,
		Limits: deploy.Limits{MaxErrorRate: 0.05, MaxLatencyRatio: 2, MinRequests: 20, LatencyFloor: 20 * time.Millisecond},
	}
}

// load sends requests through the front with 8 keep-alive clients until stop, and counts
// the failures a user would see (transport errors; 5xx are the app's own answers).
func load(t *testing.T, url string) (stop func() (requests, failed int64)) {
	t.Helper()
	return loadWith(t, url, 8)
}

// loadWith is load with the given number of clients.
func loadWith(t *testing.T, url string, clients int) (stop func() (requests, failed int64)) {
	t.Helper()
	var reqs, failed atomic.Int64
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
		wg.Go(func() {
			for n := 0; n < 200000; n++ { // bounded
				select {
				case <-quit:
					return
				default:
				}
				resp, err := c.Get(url)
				reqs.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	return func() (int64, int64) {
		close(quit)
		wg.Wait()
		return reqs.Load(), failed.Load()
	}
}

func runDeploy(t *testing.T, r *rig, req deploy.Request) (deploy.Record, []deploy.Event) {
	t.Helper()
	id, err := r.d.Start(req)
	if err != nil {
		t.Fatal(err)
	}
	var events []deploy.Event
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := r.d.Follow(ctx, id, func(e deploy.Event) { events = append(events, e) })
	if err != nil {
		t.Fatal(err)
	}
	return rec, events
}

func TestCleanDeploySwitchesWatchesAndStopsTheOldVersion(t *testing.T) {
	blue, green := startApp(t, "blue", 0, 0), startApp(t, "green", 0, 0)
	st := settings(green)
	stopped := make(chan string, 1)
	st.Stop = "echo stopping {port}"
	r := newRig(t, blue, st)
	stop := load(t, r.Front.URL+"/")

	rec, events := runDeploy(t, r, deploy.Request{NoStart: true})
	reqs, failed := stop()
	close(stopped)
	if rec.Result != deploy.ResultSucceeded {
		t.Fatalf("deploy: %s: %s", rec.Result, rec.Why)
	}
	if failed != 0 {
		t.Fatalf("%d of %d requests failed during the deploy", failed, reqs)
	}
	if got := r.Switcher.Status(); got.Active.Addr != green.Addr() || got.Standby == nil || !got.Standby.Stopped {
		t.Fatalf("after the deploy: active %s, standby %+v; want green active and blue recorded as stopped", got.Active.Addr, got.Standby)
	}
	var phases []string
	sawStopOutput := false
	for _, e := range events {
		if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
			phases = append(phases, e.Phase)
		}
		if e.Phase == deploy.PhaseStop && e.Message == fmt.Sprintf("stopping %d", port(blue)) {
			sawStopOutput = true
		}
	}
	if want := "start switch monitor stop done"; strings.Join(phases, " ") != want {
		t.Errorf("phases %q, want %q", strings.Join(phases, " "), want)
	}
	if !sawStopOutput {
		t.Errorf("deploy.stop's output for port %d was not shown", port(blue))
	}
	if _, err := r.Switcher.Rollback(context.Background(), switcher.SwitchOptions{}); err == nil || !strings.Contains(err.Error(), "rollback --start") {
		t.Errorf("rollback to the stopped standby: %v; want a refusal naming rollback --start", err)
	}
	if h := r.d.History(); len(h) != 1 || h[0].Result != deploy.ResultSucceeded {
		t.Errorf("history %+v", h)
	}
}

// TestBadReleaseIsRolledBackNamingTheFigure deploys a release that fails a share of its
// requests, and one three times slower than the old version, under load. The delays are tens
// of milliseconds so that the scheduling noise of a busy (and -race) machine, which adds about
// the same to both versions' p95, cannot hide a 3x slowdown behind the default ratio of 2.
func TestBadReleaseIsRolledBackNamingTheFigure(t *testing.T) {
	const oldLatency = 50 * time.Millisecond
	for _, tc := range []struct {
		name     string
		failEach int
		delay    time.Duration
		figure   string
	}{
		{"answers 500 to every third request", 3, oldLatency, "error rate"},
		{"three times slower", 0, 3 * oldLatency, "p95 latency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blue := startApp(t, "blue", 0, oldLatency)
			bad := startApp(t, "green", tc.failEach, tc.delay)
			st := settings(bad)
			st.Monitor = 10 * time.Second // the rollback must come well before this
			st.Sustain = 500 * time.Millisecond
			r := newRig(t, blue, st)
			stop := loadWith(t, r.Front.URL+"/", 16)
			defer stop()
			// A baseline: blue's answers before the deploy, enough of them that the clients'
			// first requests (which dial) are well under the 5% a p95 leaves out.
			deadline := time.Now().Add(10 * time.Second)
			for s, _ := r.Switcher.TargetStats(blue.Addr()); s.Requests() < 400 && time.Now().Before(deadline); s, _ = r.Switcher.TargetStats(blue.Addr()) {
				time.Sleep(10 * time.Millisecond)
			}

			rec, _ := runDeploy(t, r, deploy.Request{NoStart: true})
			if rec.Result != deploy.ResultRolledBack {
				t.Fatalf("deploy of a bad release: %s: %s; want rolled back", rec.Result, rec.Why)
			}
			t.Log(rec.Why)
			if !strings.Contains(rec.Why, tc.figure) || !strings.Contains(rec.Why, "vs") {
				t.Errorf("the reason %q does not name %s with both values", rec.Why, tc.figure)
			}
			if active := r.Switcher.Status().Active.Addr; active != blue.Addr() {
				t.Errorf("after the rollback traffic goes to %s, want blue", active)
			}
		})
	}
}

func TestNothingIsSwitchedWhenTheNewVersionCannotStart(t *testing.T) {
	blue := startApp(t, "blue", 0, 0)
	dead := httptest.NewServer(http.NotFoundHandler()) // answers 404 to the health probe
	dead.Close()
	t.Run("start command fails", func(t *testing.T) {
		st := settings(blue)
		st.Ports = []int{port(blue), 1}
		st.Start = "echo no jar here; exit 3"
		r := newRig(t, blue, st)
		rec, _ := runDeploy(t, r, deploy.Request{})
		if rec.Result != deploy.ResultFailed || !strings.Contains(rec.Why, "exited with status 3") || !strings.Contains(rec.Why, "nothing was switched") {
			t.Fatalf("got %s: %s", rec.Result, rec.Why)
		}
		if r.Switcher.Status().Active.Addr != blue.Addr() {
			t.Fatal("traffic moved")
		}
	})
	t.Run("never healthy", func(t *testing.T) {
		st := settings(blue)
		r := newRig(t, blue, st)
		rec, _ := runDeploy(t, r, deploy.Request{To: dead.Listener.Addr().String(), NoStart: true})
		if rec.Result != deploy.ResultFailed || !strings.Contains(rec.Why, "never became healthy") || !strings.Contains(rec.Why, "connection refused") {
			t.Fatalf("got %s: %s", rec.Result, rec.Why)
		}
		if r.Switcher.Status().Active.Addr != blue.Addr() {
			t.Fatal("traffic moved")
		}
	})
}

func TestAbortDuringMonitorRollsBack(t *testing.T) {
	blue, green := startApp(t, "blue", 0, 0), startApp(t, "green", 0, 0)
	st := settings(green)
	st.Monitor = time.Minute
	r := newRig(t, blue, st)
	id, err := r.d.Start(deploy.Request{NoStart: true})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s := r.d.Current(); s == nil || s.Phase != deploy.PhaseMonitor; s = r.d.Current() {
		if time.Now().After(deadline) {
			t.Fatal("the deploy never reached its monitor window")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := r.d.Current(); s.MonitorLeft <= 0 || s.New == nil || s.Old == nil {
		t.Errorf("status during the monitor: %+v", s)
	}
	if _, err := r.d.Start(deploy.Request{NoStart: true}); err != deploy.ErrBusy {
		t.Errorf("a second deploy: %v, want ErrBusy", err)
	}
	if got, err := r.d.Abort(); err != nil || got != id {
		t.Fatalf("abort: %d, %v", got, err)
	}
	rec, err := r.d.Follow(context.Background(), id, func(deploy.Event) {})
	if err != nil || rec.Result != deploy.ResultAborted {
		t.Fatalf("aborted deploy: %+v, %v", rec, err)
	}
	if r.Switcher.Status().Active.Addr != blue.Addr() {
		t.Fatal("abort did not send traffic back to blue")
	}
}

func TestRestartMidDeployRecordsItInterrupted(t *testing.T) {
	dir := t.TempDir()
	h, _, err := deploy.OpenHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	blue, green := startApp(t, "blue", 0, 0), startApp(t, "green", 0, 0)
	_ = blue
	log := slog.New(slog.DiscardHandler)
	p := proxy.New(log)
	sw, _ := switcher.New(p, health.NewChecker(), switcher.NewStore(dir), switcher.Settings{
		Host: "127.0.0.1", Probe: health.Probe{Path: "/actuator/health", Timeout: time.Second},
		Interval: 10 * time.Millisecond, Passes: 1, Wait: 2 * time.Second, DrainTimeout: time.Second,
	}, blue.Addr(), log)
	defer sw.Close()
	st := settings(green)
	st.Monitor = time.Minute
	d := deploy.New(sw, h, st, log)
	d.SetTick(10 * time.Millisecond)
	if _, err := d.Start(deploy.Request{NoStart: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s := d.Current(); s == nil || s.Phase != deploy.PhaseMonitor; s = d.Current() {
		if time.Now().After(deadline) {
			t.Fatal("never reached the monitor window")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// routied dies here; the next one opens the same history.
	again, notes, err := deploy.OpenHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	list := again.List()
	if len(list) != 1 || list[0].Result != deploy.ResultInterrupted || !strings.Contains(list[0].Why, "monitor") {
		t.Fatalf("history after a restart: %+v", list)
	}
	if len(notes) != 1 {
		t.Errorf("notes %v, want one saying the deploy was interrupted", notes)
	}
	// Let the first deployer finish writing before the test's directory goes away.
	id, _ := d.Abort()
	d.Follow(context.Background(), id, func(deploy.Event) {})
}

func TestJudge(t *testing.T) {
	snap := func(total, errors uint64, latency time.Duration) proxy.StatsSnapshot {
		var s proxy.StatsSnapshot
		s.Classes[2] = total - errors
		s.Classes[5] = errors
		s.Latency[proxy.LatencyBucket(latency)] = total
		return s
	}
	limits := deploy.Limits{MaxErrorRate: 0.05, MaxLatencyRatio: 2, MinRequests: 50, LatencyFloor: 20 * time.Millisecond}
	for _, tc := range []struct {
		name           string
		base, window   proxy.StatsSnapshot
		trip           bool
		figure, values string
	}{
		{"same as before", snap(1000, 1, 10*time.Millisecond), snap(200, 0, 10*time.Millisecond), false, "", ""},
		{"too few requests to judge", snap(1000, 0, 10*time.Millisecond), snap(10, 10, time.Second), false, "", ""},
		{"errors above the limit", snap(1000, 0, 10*time.Millisecond), snap(200, 40, 10*time.Millisecond), true, "error rate", "20.0% on the new target vs 0.0%"},
		{"errors as high as before", snap(1000, 200, 10*time.Millisecond), snap(200, 40, 10*time.Millisecond), false, "", ""},
		{"three times slower", snap(1000, 0, 10*time.Millisecond), snap(200, 0, 30*time.Millisecond), true, "p95 latency", ""},
		{"a bit slower", snap(1000, 0, 10*time.Millisecond), snap(200, 0, 14*time.Millisecond), false, "", ""},
		{"three times slower but under the floor", snap(1000, 0, 2*time.Millisecond), snap(200, 0, 6*time.Millisecond), false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := deploy.Judge(tc.base, tc.window, limits)
			if v.Trip != tc.trip || v.Figure != tc.figure || !strings.Contains(v.Reason(), tc.values) {
				t.Fatalf("Judge = %+v (%q)", v, v.Reason())
			}
		})
	}
}
