package switcher_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/switcher"
)

func TestSwitchUnderLoadDropsNothing(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	st := testrig.FastSettings()
	st.Passes = 1
	r := newRig(t, blue.Addr(), st)

	const clients = 32
	const minSwitches = 20
	var (
		failed   atomic.Int64
		non2xx   atomic.Int64
		servedBy sync.Map // app name -> *atomic.Int64
		firstErr atomic.Value
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		// One keep-alive connection per client, as a browser or an app server would hold.
		tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		wg.Go(func() {
			for n := 0; n < 100000; n++ { // bounded
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(r.Front.URL + "/")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = resp.Body.Read(make([]byte, 64))
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					non2xx.Add(1)
				}
				v, _ := servedBy.LoadOrStore(resp.Header.Get("X-App"), new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		})
	}

	start := time.Now()
	switches := 0
	for switches < minSwitches || time.Since(start) < 3*time.Second {
		target := green.Addr()
		if switches%2 == 1 {
			target = blue.Addr()
		}
		switchTo(t, r.Switcher, target)
		switches++
		time.Sleep(50 * time.Millisecond) // let each target serve a while between switches
	}
	close(stop)
	wg.Wait()

	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed during %d switches; first: %v", n, switches, firstErr.Load())
	}
	if n := non2xx.Load(); n != 0 {
		t.Errorf("%d requests got a non-2xx status", n)
	}
	for _, name := range []string{"blue", "green"} {
		v, ok := servedBy.Load(name)
		if !ok || v.(*atomic.Int64).Load() == 0 {
			t.Errorf("%s served no requests", name)
		}
	}
	t.Logf("%d switches in %s", switches, time.Since(start).Round(time.Millisecond))
}

func TestInFlightRequestFinishesOnOldTargetAcrossSwitch(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	r := newRig(t, blue.Addr(), testrig.FastSettings())

	type answer struct {
		status int
		app    string
	}
	held := make(chan answer, 1)
	go func() {
		resp, err := http.Get(r.Front.URL + "/hold")
		if err != nil {
			held <- answer{status: -1, app: err.Error()}
			return
		}
		resp.Body.Close()
		held <- answer{resp.StatusCode, resp.Header.Get("X-App")}
	}()
	<-blue.Held() // the request is in flight on blue

	swapped := make(chan struct{})
	result := make(chan switcher.Report, 1)
	go func() {
		rep, err := r.Switcher.Switch(context.Background(), green.Addr(), switcher.SwitchOptions{Progress: func(e switcher.Event) {
			if e.Kind == switcher.EventSwap {
				close(swapped)
			}
		}})
		if err != nil {
			t.Errorf("switch: %v", err)
		}
		result <- rep
	}()
	<-swapped
	if status, by := get(t, http.DefaultClient, r.Front.URL+"/"); status != 200 || by != "green" {
		t.Fatalf("a request after the swap got %d from %q, want 200 from green", status, by)
	}
	select {
	case <-result:
		t.Fatal("the switch returned while a request was still in flight on the old target")
	default:
	}
	blue.Release()
	if a := <-held; a.status != 200 || a.app != "blue" {
		t.Fatalf("the in-flight request got %d from %q, want 200 from blue", a.status, a.app)
	}
	rep := <-result
	if rep.Drain == nil || rep.Drain.Waited != 1 || rep.Drain.Cancelled != 0 {
		t.Fatalf("drain report %+v (switch %s -> %s; blue is %s), want it to have waited for 1 request and cancelled none", rep.Drain, rep.From, rep.To, blue.Addr())
	}
}

func TestDrainTimeoutCancelsLeftoverRequestsWith504(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	st := testrig.FastSettings()
	st.DrainTimeout = 100 * time.Millisecond
	r := newRig(t, blue.Addr(), st)

	status := make(chan int, 1)
	go func() {
		resp, err := http.Get(r.Front.URL + "/hold")
		if err != nil {
			status <- -1
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	<-blue.Held()
	rep := switchTo(t, r.Switcher, green.Addr())
	if rep.Drain == nil || rep.Drain.Cancelled != 1 {
		t.Fatalf("drain report %+v, want 1 request cancelled at drain.timeout", rep.Drain)
	}
	if got := <-status; got != http.StatusGatewayTimeout {
		t.Fatalf("the request still running at drain.timeout got %d, want 504", got)
	}
}

func TestWebSocketOutlivesSwitchUntilStreamGraceEnds(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	st := testrig.FastSettings()
	st.StreamGrace = 300 * time.Millisecond
	r := newRig(t, blue.Addr(), st)
	ctx := context.Background()
	wsURL := "ws" + strings.TrimPrefix(r.Front.URL, "http") + "/ws"

	old, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.CloseNow()
	echo := func(c *websocket.Conn, msg string) (string, error) {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return "", err
		}
		_, got, err := c.Read(ctx)
		return string(got), err
	}
	if got, err := echo(old, "before"); err != nil || got != "blue: before" {
		t.Fatalf("echo before the switch: %q, %v", got, err)
	}

	rep := switchTo(t, r.Switcher, green.Addr())
	if rep.Drain == nil || rep.Drain.Streams != 1 {
		t.Fatalf("drain report %+v, want 1 stream left open", rep.Drain)
	}
	if got, err := echo(old, "after"); err != nil || got != "blue: after" {
		t.Fatalf("the WebSocket opened before the switch stopped echoing: %q, %v", got, err)
	}
	fresh, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.CloseNow()
	if got, err := echo(fresh, "new"); err != nil || got != "green: new" {
		t.Fatalf("a WebSocket opened after the switch: %q, %v; want green", got, err)
	}

	readCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := old.Read(readCtx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the old WebSocket was not closed after drain.streams: %v", err)
	}
	testrig.WaitFor(t, "no connections left to the old target", func() bool {
		s := r.Switcher.Status()
		return s.Standby != nil && s.Standby.Conns == 0 && s.Standby.Streams == 0
	})
}

func TestSwitchRefusedWhenTargetIsNotHealthy(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	failing := testrig.StartApp(t, "failing")
	failing.SetHealth(http.StatusInternalServerError)
	for _, tc := range []struct {
		name, target, wantInMessage string
	}{
		{"nothing listening", testrig.DeadPort(t), "connection refused"},
		{"answers 500", failing.Addr(), "HTTP 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, blue.Addr(), testrig.FastSettings())
			_, err := r.Switcher.Switch(context.Background(), tc.target, switcher.SwitchOptions{Wait: 200 * time.Millisecond})
			var refused *switcher.RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("switch to %s: got %v, want it refused", tc.target, err)
			}
			for _, want := range []string{tc.target, tc.wantInMessage, "200ms"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q does not mention %q", err, want)
				}
			}
			if got := r.Switcher.Status().Active.Addr; got != blue.Addr() {
				t.Errorf("active target is %s after a refused switch, want %s", got, blue.Addr())
			}
			if status, by := get(t, http.DefaultClient, r.Front.URL+"/"); status != 200 || by != "blue" {
				t.Errorf("after a refused switch a request got %d from %q, want 200 from blue", status, by)
			}
		})
	}
}

func TestSecondSwitchWhileGatingIsRefused(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	green.SetHealth(http.StatusServiceUnavailable) // keeps the first switch gating
	r := newRig(t, blue.Addr(), testrig.FastSettings())

	probed := make(chan struct{}, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := r.Switcher.Switch(ctx, green.Addr(), switcher.SwitchOptions{Progress: func(switcher.Event) {
			select {
			case probed <- struct{}{}:
			default:
			}
		}})
		done <- err
	}()
	<-probed
	_, err := r.Switcher.Switch(context.Background(), green.Addr(), switcher.SwitchOptions{})
	var busy *switcher.InProgressError
	if !errors.As(err, &busy) || !strings.Contains(err.Error(), "switch to "+green.Addr()+" in progress") {
		t.Fatalf("second switch: got %v, want 'switch to %s in progress'", err, green.Addr())
	}
	if _, err := r.Switcher.Rollback(context.Background(), switcher.SwitchOptions{}); !errors.As(err, &busy) {
		t.Fatalf("rollback while gating: got %v, want in progress", err)
	}
	cancel()
	if err := <-done; err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled switch returned %v", err)
	}
	if _, err := r.Switcher.Switch(context.Background(), blue.Addr(), switcher.SwitchOptions{}); err != nil {
		t.Fatalf("a switch after the cancelled one: %v", err)
	}
}

func TestSwitchToActiveTargetIsNoOp(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	r := newRig(t, blue.Addr(), testrig.FastSettings())
	rep := switchTo(t, r.Switcher, blue.Addr())
	if !rep.NoOp {
		t.Fatalf("report %+v, want a no-op", rep)
	}
}

func TestRollbackReturnsTrafficToStandby(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	r := newRig(t, blue.Addr(), testrig.FastSettings())
	if _, err := r.Switcher.Rollback(context.Background(), switcher.SwitchOptions{}); !errors.Is(err, switcher.ErrNoStandby) {
		t.Fatalf("rollback with no standby: got %v", err)
	}
	switchTo(t, r.Switcher, green.Addr())
	rep, err := r.Switcher.Rollback(context.Background(), switcher.SwitchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.To != blue.Addr() {
		t.Fatalf("rolled back to %s, want %s", rep.To, blue.Addr())
	}
	if _, by := get(t, http.DefaultClient, r.Front.URL+"/"); by != "blue" {
		t.Fatalf("after rollback traffic goes to %q, want blue", by)
	}
	if s := r.Switcher.Status(); s.Standby == nil || s.Standby.Addr != green.Addr() {
		t.Fatalf("standby after rollback: %+v, want green", s.Standby)
	}
}

func TestRollbackToDeadStandbyIsRefusedUnlessForced(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	r := newRig(t, blue.Addr(), testrig.FastSettings())
	switchTo(t, r.Switcher, green.Addr())
	blue.Close()
	_, err := r.Switcher.Rollback(context.Background(), switcher.SwitchOptions{})
	var refused *switcher.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("rollback to a dead standby: got %v, want refused with a hint about --force", err)
	}
	if _, err := r.Switcher.Rollback(context.Background(), switcher.SwitchOptions{Force: true}); err != nil {
		t.Fatalf("forced rollback: %v", err)
	}
	if got := r.Switcher.Status().Active.Addr; got != blue.Addr() {
		t.Fatalf("active after forced rollback: %s", got)
	}
}

func TestRestartKeepsActiveTarget(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	store := switcher.NewStore(t.TempDir())
	first := newRigWithStore(t, blue.Addr(), testrig.FastSettings(), store)
	switchTo(t, first.Switcher, green.Addr())
	first.Switcher.Close()

	second := newRigWithStore(t, blue.Addr(), testrig.FastSettings(), store)
	s := second.Switcher.Status()
	if s.Active.Addr != green.Addr() || s.Standby == nil || s.Standby.Addr != blue.Addr() {
		t.Fatalf("after restart active=%s standby=%v, want active green, standby blue", s.Active.Addr, s.Standby)
	}
	if _, by := get(t, http.DefaultClient, second.Front.URL+"/"); by != "green" {
		t.Fatalf("after restart traffic goes to %q, want green", by)
	}
}

func TestCorruptStateFileIsReportedAndInitialServes(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	store := switcher.NewStore(t.TempDir())
	if err := os.WriteFile(store.Path(), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(); err == nil || !strings.Contains(err.Error(), store.Path()) {
		t.Fatalf("loading a corrupt state file: %v, want an error naming %s", err, store.Path())
	}
	r := newRigWithStore(t, blue.Addr(), testrig.FastSettings(), store)
	if _, by := get(t, http.DefaultClient, r.Front.URL+"/"); by != "blue" {
		t.Fatalf("with a corrupt state file traffic goes to %q, want the initial target", by)
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"8081", "127.0.0.1:8081", ""},
		{"10.0.0.5:8080", "10.0.0.5:8080", ""},
		{"[::1]:8081", "[::1]:8081", ""},
		{"app.internal:8080", "app.internal:8080", ""},
		{"0", "", "out of range"},
		{"70000", "", "out of range"},
		{"eighty", "", "not a number"},
		{"host:", "", "not a number"},
		{":8080", "", "host is empty"},
		{"", "", "empty"},
	} {
		got, err := switcher.ParseTarget(tc.in, "127.0.0.1")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTarget(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseTarget(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestStoppedStandbyStaysStoppedUntilAProbeStartedAfterTheStopPasses(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue", testrig.HoldProbes()), testrig.StartApp(t, "green")
	r := newRig(t, blue.Addr(), testrig.FastSettings())
	switchTo(t, r.Switcher, green.Addr())

	// A probe of blue that started while deploy.stop ran, and passed just before the app
	// went: it says nothing about the app now.
	early := make(chan error, 1)
	go func() { _, err := r.Switcher.Probe(context.Background(), blue.Addr()); early <- err }()
	answer := blue.NextProbe(t)
	r.Switcher.MarkStopped(blue.Addr())
	close(answer)
	if err := testrig.Recv(t, early, "the early probe"); err != nil {
		t.Fatal(err)
	}
	if sb := r.Switcher.Status().Standby; sb == nil || !sb.Stopped {
		t.Fatalf("standby after a probe that started before the stop: %+v, want it still recorded as stopped", sb)
	}
	var stopped *switcher.StoppedError
	if _, err := r.Switcher.Rollback(context.Background(), switcher.SwitchOptions{}); !errors.As(err, &stopped) {
		t.Fatalf("rollback to the stopped standby: %v, want StoppedError (rollback --start)", err)
	}

	// Someone started the app again: the next probe that passes clears the mark.
	late := make(chan error, 1)
	go func() { _, err := r.Switcher.Probe(context.Background(), blue.Addr()); late <- err }()
	close(blue.NextProbe(t))
	if err := testrig.Recv(t, late, "the late probe"); err != nil {
		t.Fatal(err)
	}
	if sb := r.Switcher.Status().Standby; sb == nil || sb.Stopped {
		t.Fatalf("standby after a passing probe that started after the stop: %+v, want it no longer stopped", sb)
	}
}
