package deploy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/deploy"
	"github.com/routie/routie/switcher"
)

// phasesOf lists the phases of events in order, each once per run of it.
func phasesOf(events []deploy.Event) string {
	var phases []string
	for _, e := range events {
		if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
			phases = append(phases, e.Phase)
		}
	}
	return strings.Join(phases, " ")
}

// waitPhase polls the deploy in progress until it is in phase.
func waitPhase(t *testing.T, d *deploy.Deployer, phase string) *deploy.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s := d.Current(); s != nil && s.Phase == phase {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deploy never reached its %s phase", phase)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCanaryDeployWalksItsStepsAndPromotesWhenClean(t *testing.T) {
	// Both take 10ms, so the p95 compared is the apps' and not the noise of a busy machine.
	blue, green := startApp(t, "blue", 0, 10*time.Millisecond), startApp(t, "green", 0, 10*time.Millisecond)
	st := settings(green)
	st.Stop = "echo stopping {port}"
	r := newRig(t, blue, st)
	stop := load(t, r.Front.URL+"/")

	rec, events := runDeploy(t, r, deploy.Request{NoStart: true, Canary: []int{5, 25, 50}, Step: 400 * time.Millisecond})
	reqs, failed := stop()
	if rec.Result != deploy.ResultSucceeded {
		t.Fatalf("deploy: %s: %s", rec.Result, rec.Why)
	}
	if failed != 0 {
		t.Fatalf("%d of %d requests failed during the canary deploy", failed, reqs)
	}
	if want := "start canary promote monitor stop done"; phasesOf(events) != want {
		t.Errorf("phases %q, want %q", phasesOf(events), want)
	}
	// The canary took each share in turn.
	var shares []string
	for _, e := range events {
		switch {
		case e.Switch != nil && e.Switch.Kind == switcher.EventCanary:
			shares = append(shares, fmt.Sprintf("%d%%", e.Switch.Weight))
		case e.Phase == deploy.PhaseCanary && strings.HasPrefix(e.Message, green.Addr()+" now takes "):
			shares = append(shares, strings.Fields(strings.TrimPrefix(e.Message, green.Addr()+" now takes "))[0])
		}
	}
	if got := strings.Join(shares, " "); got != "5% 25% 50%" {
		t.Errorf("the canary's shares were %q, want 5%% 25%% 50%%", got)
	}
	if !strings.Contains(rec.Why, "watched at 5,25,50% of the clients") || !strings.Contains(rec.Why, blue.Addr()+" stopped") {
		t.Errorf("why %q", rec.Why)
	}
	s := r.Switcher.Status()
	if s.Active.Addr != green.Addr() || s.Canary != nil || s.Standby == nil || s.Standby.Addr != blue.Addr() || !s.Standby.Stopped {
		t.Fatalf("after the deploy: active %s, canary %+v, standby %+v; want green, none, blue stopped", s.Active.Addr, s.Canary, s.Standby)
	}
	if h := r.d.History(); len(h) != 1 || fmt.Sprint(h[0].Canary) != "[5 25 50]" {
		t.Errorf("history %+v, want the canary's steps recorded", h)
	}
}

func TestPromotedCanaryIsWatchedAndRolledBackWhenItGoesBad(t *testing.T) {
	blue, green := startApp(t, "blue", 0, 0), startApp(t, "green", 0, 0)
	st := settings(green)
	st.Monitor = 10 * time.Second // the rollback must come well before this
	st.Stop = "echo stopping {port}"
	r := newRig(t, blue, st)
	stop := load(t, r.Front.URL+"/")
	defer stop()

	id, err := r.d.Start(deploy.Request{NoStart: true, Canary: []int{50}, Step: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := waitPhase(t, r.d, deploy.PhaseMonitor)
	if s.MonitorLeft <= 0 || s.New == nil || s.New.Addr != green.Addr() || s.Old == nil || s.Old.Addr != blue.Addr() {
		t.Errorf("status in the monitor window after the promotion: %+v", s)
	}
	green.SetFailEach(3) // the new version starts failing once it takes all the traffic
	var events []deploy.Event
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := r.d.Follow(ctx, id, func(e deploy.Event) { events = append(events, e) })
	if err != nil {
		t.Fatal(err)
	}
	if rec.Result != deploy.ResultRolledBack || !strings.Contains(rec.Why, "error rate") || !strings.Contains(rec.Why, "back on "+blue.Addr()) {
		t.Fatalf("deploy: %s: %s; want rolled back to blue on the error rate", rec.Result, rec.Why)
	}
	if want := "start canary promote monitor rollback done"; phasesOf(events) != want {
		t.Errorf("phases %q, want %q", phasesOf(events), want)
	}
	if s := r.Switcher.Status(); s.Active.Addr != blue.Addr() || s.Standby == nil || s.Standby.Stopped {
		t.Errorf("after the rollback: active %s, standby %+v; want blue, with green standing by", s.Active.Addr, s.Standby)
	}
}

func TestCanaryDeployRollsBackWhenTheCanaryAnswers500(t *testing.T) {
	blue := startApp(t, "blue", 0, 0)
	bad := startApp(t, "green", 3, 0) // every third request answers 500
	st := settings(bad)
	r := newRig(t, blue, st)
	stop := load(t, r.Front.URL+"/")

	rec, events := runDeploy(t, r, deploy.Request{NoStart: true, Canary: []int{5, 25, 50}, Step: 10 * time.Second})
	reqs, failed := stop()
	t.Logf("%s: %s", rec.Result, rec.Why)
	if rec.Result != deploy.ResultRolledBack {
		t.Fatalf("canary deploy of a bad release: %s: %s; want rolled back", rec.Result, rec.Why)
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed (transport errors) during the canary and its abort", failed, reqs)
	}
	for _, want := range []string{"error rate", "vs", "of the clients", "every client is back on " + blue.Addr()} {
		if !strings.Contains(rec.Why, want) {
			t.Errorf("the reason %q does not say %q", rec.Why, want)
		}
	}
	if want := "start canary rollback done"; phasesOf(events) != want {
		t.Errorf("phases %q, want %q", phasesOf(events), want)
	}
	sawAbort := false
	for _, e := range events {
		if e.Switch != nil && e.Switch.Kind == switcher.EventCanaryAborted {
			sawAbort = true
		}
	}
	if !sawAbort {
		t.Error("no canary_aborted event in the rollback")
	}
	s := r.Switcher.Status()
	if s.Active.Addr != blue.Addr() || s.Canary != nil {
		t.Fatalf("after the rollback: active %s, canary %+v; want blue alone", s.Active.Addr, s.Canary)
	}
	if served := bad.Served(); served == 0 {
		t.Error("the bad canary never served a request")
	}
	before := bad.Served()
	get := load(t, r.Front.URL+"/")
	get()
	if after := bad.Served(); after != before {
		t.Errorf("the aborted canary served %d more requests", after-before)
	}
}

func TestCanaryDeployAbortSendsTheClientsBack(t *testing.T) {
	blue, green := startApp(t, "blue", 0, 0), startApp(t, "green", 0, 0)
	st := settings(green)
	r := newRig(t, blue, st)
	id, err := r.d.Start(deploy.Request{NoStart: true, Canary: []int{10, 50}, Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s := waitPhase(t, r.d, deploy.PhaseCanary)
	deadline := time.Now().Add(10 * time.Second)
	for s.Canary == nil || s.Canary.StepLeft == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("status during the canary: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
		s = r.d.Current()
	}
	if s.Canary.Weight != 10 || s.Canary.Step != 1 || s.New == nil || s.New.Addr != green.Addr() || s.Old == nil || s.Old.Addr != blue.Addr() {
		t.Errorf("status during the canary: %+v (canary %+v)", s, s.Canary)
	}
	if got, err := r.d.Abort(); err != nil || got != id {
		t.Fatalf("abort: %d, %v", got, err)
	}
	rec, err := r.d.Follow(context.Background(), id, func(deploy.Event) {})
	if err != nil || rec.Result != deploy.ResultAborted || !strings.Contains(rec.Why, "aborted during the canary at 10%") {
		t.Fatalf("aborted canary deploy: %+v, %v", rec, err)
	}
	if s := r.Switcher.Status(); s.Active.Addr != blue.Addr() || s.Canary != nil {
		t.Fatalf("after the abort: active %s, canary %+v", s.Active.Addr, s.Canary)
	}
}

func TestCanaryPromotedByHandEndsTheWalkAndStopsTheOldVersion(t *testing.T) {
	blue, green := startApp(t, "blue", 0, 0), startApp(t, "green", 0, 0)
	st := settings(green)
	st.Stop = "true"
	r := newRig(t, blue, st)
	id, err := r.d.Start(deploy.Request{NoStart: true, Canary: []int{10, 50}, Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, r.d, deploy.PhaseCanary)
	deadline := time.Now().Add(10 * time.Second)
	for r.Switcher.Status().Canary == nil {
		if time.Now().After(deadline) {
			t.Fatal("the canary never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := r.Switcher.Promote(context.Background(), switcher.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err := r.d.Follow(context.Background(), id, func(deploy.Event) {})
	if err != nil || rec.Result != deploy.ResultSucceeded || !strings.Contains(rec.Why, "promoted by hand at 10%") {
		t.Fatalf("deploy after a promotion by hand: %+v, %v", rec, err)
	}
	if s := r.Switcher.Status(); s.Active.Addr != green.Addr() || s.Standby == nil || !s.Standby.Stopped {
		t.Fatalf("after the deploy: %+v", s)
	}
}

func TestCanaryStepsThatCannotWorkAreRefused(t *testing.T) {
	blue, green := startApp(t, "blue", 0, 0), startApp(t, "green", 0, 0)
	r := newRig(t, blue, settings(green))
	for _, tc := range []struct {
		name string
		req  deploy.Request
		want string
	}{
		{"falling", deploy.Request{Canary: []int{50, 25}}, "canary steps 50,25 do not rise: 25 after 50"},
		{"100%", deploy.Request{Canary: []int{50, 100}}, "canary step 100% is out of range"},
		{"a step without steps", deploy.Request{Step: time.Minute}, "the step is each canary step's time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.d.Start(tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if h := r.d.History(); len(h) != 0 {
		t.Fatalf("refused deploys were recorded: %+v", h)
	}
}
