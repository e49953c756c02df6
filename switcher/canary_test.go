package switcher_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
)

// loadResult is what the clients of startLoad saw.
type loadResult struct {
	requests, failed, non2xx int64
	firstErr                 string
	servedBy                 map[string]int64
}

// startLoad runs clients keep-alive clients, one connection each, against url until stop is
// called (or each has sent 100000 requests). Half keep cookies, as browsers do, so routie
// pins them; half do not, so each of their requests is split anew.
func startLoad(t *testing.T, url string, clients int) (stop func() loadResult) {
	t.Helper()
	var (
		requests, failed, non2xx atomic.Int64
		firstErr                 atomic.Value
		mu                       sync.Mutex
		servedBy                 = map[string]int64{}
	)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		if i%2 == 0 {
			c.Jar, _ = cookiejar.New(nil)
		}
		wg.Go(func() {
			by := map[string]int64{}
			defer func() {
				mu.Lock()
				for k, v := range by {
					servedBy[k] += v
				}
				mu.Unlock()
			}()
			for n := 0; n < 100000; n++ { // bounded
				select {
				case <-quit:
					return
				default:
				}
				requests.Add(1)
				resp, err := c.Get(url)
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
				by[resp.Header.Get("X-App")]++
			}
		})
	}
	return func() loadResult {
		close(quit)
		wg.Wait()
		r := loadResult{requests: requests.Load(), failed: failed.Load(), non2xx: non2xx.Load(), servedBy: servedBy}
		if v, ok := firstErr.Load().(string); ok {
			r.firstErr = v
		}
		return r
	}
}

// servedAtLeast waits until the switcher counts n more answers from addr than before.
func servedAtLeast(t *testing.T, sw *switcher.Switcher, addr string, n uint64) {
	t.Helper()
	start, _ := sw.TargetStats(addr)
	testrig.WaitFor(t, fmt.Sprintf("%d answers from %s", n, addr), func() bool {
		now, ok := sw.TargetStats(addr)
		return ok && now.Requests()-start.Requests() >= n
	})
}

// canaryCookie returns a Cookie header that puts its client on the running canary's side,
// from the salt the switcher saved.
func canaryCookie(t *testing.T, r *testrig.Rig) string {
	t.Helper()
	saved, err := r.Store.Load()
	if err != nil || saved.Canary == "" {
		t.Fatalf("saved state %+v, %v: no canary", saved, err)
	}
	ticket := (proxy.ShareScale - saved.CanarySalt) % proxy.ShareScale // turned by the salt: 0
	return fmt.Sprintf("%s=%d", proxy.CanaryCookie, ticket)
}

func TestCanaryPromoteAndAbortUnderLoadDropNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(context.Context, *switcher.Switcher) (switcher.Report, error)
		// promoted: traffic ends on the canary, else on the active target.
		promoted bool
	}{
		{"promote", func(ctx context.Context, sw *switcher.Switcher) (switcher.Report, error) {
			return sw.Promote(ctx, switcher.SwitchOptions{})
		}, true},
		{"abort", func(ctx context.Context, sw *switcher.Switcher) (switcher.Report, error) {
			return sw.AbortCanary(ctx, switcher.SwitchOptions{})
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
			st := testrig.FastSettings()
			st.Passes = 1
			r := newRig(t, blue.Addr(), st)
			stop := startLoad(t, r.Front.URL+"/", 32)

			const rounds = 8
			apps := map[string]*testrig.App{blue.Addr(): blue, green.Addr(): green}
			for round := range rounds {
				active := r.Switcher.Status().Active.Addr
				next := green.Addr()
				if active == green.Addr() {
					next = blue.Addr()
				}
				rep, err := r.Switcher.Canary(context.Background(), next, 30, switcher.SwitchOptions{})
				if err != nil {
					t.Fatalf("round %d: canary of %s: %v", round, next, err)
				}
				if rep.From != active || rep.To != next || rep.Weight != 30 {
					t.Fatalf("round %d: canary report %+v", round, rep)
				}
				// Both sides serve for a while before the canary ends.
				servedAtLeast(t, r.Switcher, next, 50)
				servedAtLeast(t, r.Switcher, active, 50)
				rep, err = tc.end(context.Background(), r.Switcher)
				if err != nil {
					t.Fatalf("round %d: %s: %v", round, tc.name, err)
				}
				if rep.Drain == nil || rep.Drain.Cancelled != 0 {
					t.Fatalf("round %d: %s report %+v, want a drain that cancelled nothing", round, tc.name, rep)
				}
				want := active
				if tc.promoted {
					want = next
				}
				s := r.Switcher.Status()
				if s.Active.Addr != want || s.Canary != nil || s.Weight != 0 {
					t.Fatalf("round %d: after %s active %s, canary %+v; want %s (%s) and no canary", round, tc.name, s.Active.Addr, s.Canary, want, apps[want].Name())
				}
			}
			res := stop()
			if res.failed != 0 || res.non2xx != 0 {
				t.Errorf("%d requests failed and %d got a non-2xx status over %d canaries ended by %s (of %d requests); first error: %s",
					res.failed, res.non2xx, rounds, tc.name, res.requests, res.firstErr)
			}
			if res.servedBy["blue"] == 0 || res.servedBy["green"] == 0 {
				t.Errorf("served by %v, want both", res.servedBy)
			}
			t.Logf("%d requests over %d rounds: %v", res.requests, rounds, res.servedBy)
		})
	}
}

func TestAbortDrainLetsAnInFlightRequestOnTheCanaryFinish(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	st := testrig.FastSettings()
	st.StreamGrace = time.Minute
	r := newRig(t, blue.Addr(), st)
	if _, err := r.Switcher.Canary(context.Background(), green.Addr(), 10, switcher.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	cookie := canaryCookie(t, r)

	type result struct {
		status int
		app    string
	}
	held := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, r.Front.URL+"/hold", nil)
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			held <- result{-1, err.Error()}
			return
		}
		resp.Body.Close()
		held <- result{resp.StatusCode, resp.Header.Get("X-App")}
	}()
	<-green.Held() // in flight on the canary
	// A WebSocket on the canary is a stream: the abort leaves it drain.streams.
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(r.Front.URL, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {cookie}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	aborted := make(chan struct{})
	done := make(chan switcher.Report, 1)
	go func() {
		rep, err := r.Switcher.AbortCanary(context.Background(), switcher.SwitchOptions{Progress: func(e switcher.Event) {
			if e.Kind == switcher.EventCanaryAborted {
				close(aborted)
			}
		}})
		if err != nil {
			t.Errorf("abort: %v", err)
		}
		done <- rep
	}()
	<-aborted
	// The same client, cookie and all, is on the active target now.
	req, _ := http.NewRequest(http.MethodGet, r.Front.URL+"/", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if by := resp.Header.Get("X-App"); by != "blue" {
		t.Fatalf("after the abort the canary's client went to %q, want blue", by)
	}
	select {
	case <-done:
		t.Fatal("the abort returned while a request was still in flight on the canary")
	default:
	}
	if s := r.Switcher.Status(); s.Canary != nil || len(s.Draining) != 1 || s.Draining[0].Addr != green.Addr() || s.Draining[0].InFlight != 1 {
		t.Fatalf("status during the drain: canary %+v, draining %+v; want green draining 1 request", s.Canary, s.Draining)
	}
	green.Release()
	if got := <-held; got.status != 200 || got.app != "green" {
		t.Fatalf("the request in flight on the canary got %d from %q, want 200 from green", got.status, got.app)
	}
	rep := <-done
	if rep.From != green.Addr() || rep.To != blue.Addr() || rep.Drain == nil || rep.Drain.Waited != 1 || rep.Drain.Cancelled != 0 || rep.Drain.Streams != 1 {
		t.Fatalf("abort report %+v (drain %+v), want green → blue, 1 request waited for, none cancelled, 1 stream left", rep, rep.Drain)
	}
	if err := ws.Write(context.Background(), websocket.MessageText, []byte("still")); err != nil {
		t.Fatalf("the canary's WebSocket was cut at the abort: %v", err)
	}
	if _, msg, err := ws.Read(context.Background()); err != nil || string(msg) != "green: still" {
		t.Fatalf("the canary's WebSocket after the abort: %q, %v", msg, err)
	}
}

func TestSwitchRollbackAndSecondCanaryAreRefusedWhileACanaryRuns(t *testing.T) {
	blue, green, gray := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green"), testrig.StartApp(t, "gray")
	r := newRig(t, blue.Addr(), testrig.FastSettings())
	switchTo(t, r.Switcher, green.Addr())
	switchTo(t, r.Switcher, blue.Addr()) // green is the standby
	if _, err := r.Switcher.Canary(context.Background(), green.Addr(), 5, switcher.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		try  func() error
	}{
		{"switch", func() error { _, err := r.Switcher.Switch(ctx, gray.Addr(), switcher.SwitchOptions{}); return err }},
		{"rollback", func() error { _, err := r.Switcher.Rollback(ctx, switcher.SwitchOptions{}); return err }},
		{"canary", func() error { _, err := r.Switcher.Canary(ctx, gray.Addr(), 5, switcher.SwitchOptions{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.try()
			var running *switcher.CanaryRunningError
			want := tc.name + " refused: a canary of " + green.Addr() + " takes 5% of the clients; end it first with routiectl promote (keep it) or routiectl abort (drop it)"
			if !errors.As(err, &running) || err.Error() != want {
				t.Fatalf("got %v\nwant %s", err, want)
			}
		})
	}
	if s := r.Switcher.Status(); s.Active.Addr != blue.Addr() || s.Canary == nil || s.Canary.Addr != green.Addr() || s.Weight != 5 {
		t.Fatalf("status after the refusals: active %s, canary %+v at %d%%", s.Active.Addr, s.Canary, s.Weight)
	}
	if c := r.Switcher.Counters(); c.Switches.Refused != 1 || c.Rollbacks.Refused != 1 {
		t.Errorf("counters %+v, want the switch and the rollback counted as refused", c)
	}
}

func TestCanaryInputsThatCannotWork(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	failing := testrig.StartApp(t, "failing")
	failing.SetHealth(http.StatusServiceUnavailable)
	r := newRig(t, blue.Addr(), testrig.FastSettings())
	ctx := context.Background()
	var weightErr *switcher.WeightError
	var activeErr *switcher.ActiveTargetError
	var refused *switcher.RefusedError
	for _, tc := range []struct {
		name string
		try  func() error
		is   func(error) bool
		text string
	}{
		{"weight 0", func() error { _, err := r.Switcher.Canary(ctx, green.Addr(), 0, switcher.SwitchOptions{}); return err },
			func(err error) bool { return errors.As(err, &weightErr) }, "weight 0 is out of range"},
		{"weight 100", func() error {
			_, err := r.Switcher.Canary(ctx, green.Addr(), 100, switcher.SwitchOptions{})
			return err
		},
			func(err error) bool { return errors.As(err, &weightErr) }, "routiectl promote gives it all"},
		{"the active target", func() error { _, err := r.Switcher.Canary(ctx, blue.Addr(), 5, switcher.SwitchOptions{}); return err },
			func(err error) bool { return errors.As(err, &activeErr) }, blue.Addr() + " is the active target already"},
		{"an unhealthy target", func() error {
			_, err := r.Switcher.Canary(ctx, failing.Addr(), 5, switcher.SwitchOptions{Wait: 100 * time.Millisecond})
			return err
		}, func(err error) bool { return errors.As(err, &refused) }, "canary of " + failing.Addr() + " refused: not healthy after 100ms"},
		{"weight with no canary", func() error { _, err := r.Switcher.SetCanaryWeight(20); return err },
			func(err error) bool { return errors.Is(err, switcher.ErrNoCanary) }, "no canary is running"},
		{"promote with no canary", func() error { _, err := r.Switcher.Promote(ctx, switcher.SwitchOptions{}); return err },
			func(err error) bool { return errors.Is(err, switcher.ErrNoCanary) }, "no canary is running"},
		{"abort with no canary", func() error { _, err := r.Switcher.AbortCanary(ctx, switcher.SwitchOptions{}); return err },
			func(err error) bool { return errors.Is(err, switcher.ErrNoCanary) }, "no canary is running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.try()
			if err == nil || !tc.is(err) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want an error saying %q", err, tc.text)
			}
		})
	}
	if s := r.Switcher.Status(); s.Canary != nil {
		t.Fatalf("a canary runs after refusals only: %+v", s.Canary)
	}
	if _, by := get(t, http.DefaultClient, r.Front.URL+"/"); by != "blue" {
		t.Fatalf("traffic goes to %q, want blue alone", by)
	}
}

func TestPromotedCanaryIsActiveAndTheOldActiveStandsBy(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	r := newRig(t, blue.Addr(), testrig.FastSettings())
	ctx := context.Background()
	var events []string
	if _, err := r.Switcher.Canary(ctx, green.Addr(), 5, switcher.SwitchOptions{Progress: func(e switcher.Event) { events = append(events, e.Kind) }}); err != nil {
		t.Fatal(err)
	}
	if want := "probe probe canary"; strings.Join(events, " ") != want {
		t.Errorf("canary events %q, want %q", events, want)
	}
	rep, err := r.Switcher.SetCanaryWeight(50)
	if err != nil || rep.Weight != 50 || rep.NoOp {
		t.Fatalf("weight 50: %+v, %v", rep, err)
	}
	if rep, _ := r.Switcher.Canary(ctx, green.Addr(), 50, switcher.SwitchOptions{}); !rep.NoOp {
		t.Errorf("a canary of the running canary at its own weight: %+v, want a no-op", rep)
	}
	s := r.Switcher.Status()
	if s.Canary == nil || s.Canary.Addr != green.Addr() || s.Weight != 50 || s.Canary.Health.String() != "up" {
		t.Fatalf("status: canary %+v at %d%%, want green up at 50%%", s.Canary, s.Weight)
	}
	roles := map[switcher.Role]string{}
	for _, k := range r.Switcher.Known() {
		roles[k.Role] = k.Target.Addr()
	}
	if roles[switcher.RoleActive] != blue.Addr() || roles[switcher.RoleCanary] != green.Addr() {
		t.Errorf("Known roles %v", roles)
	}

	events = nil
	rep, err = r.Switcher.Promote(ctx, switcher.SwitchOptions{Progress: func(e switcher.Event) { events = append(events, e.Kind) }})
	if err != nil || rep.From != blue.Addr() || rep.To != green.Addr() || rep.Drain == nil {
		t.Fatalf("promote: %+v, %v", rep, err)
	}
	if want := "probe swap drained"; strings.Join(events, " ") != want {
		t.Errorf("promote events %q, want %q", events, want)
	}
	s = r.Switcher.Status()
	if s.Active.Addr != green.Addr() || s.Standby == nil || s.Standby.Addr != blue.Addr() || s.Canary != nil {
		t.Fatalf("after promote: active %s, standby %+v, canary %+v; want green, blue, none", s.Active.Addr, s.Standby, s.Canary)
	}
	for range 20 {
		if _, by := get(t, http.DefaultClient, r.Front.URL+"/"); by != "green" {
			t.Fatalf("after promote a request went to %q", by)
		}
	}
	// The promotion is a switch: rollback returns to the old active.
	if rep, err := r.Switcher.Rollback(ctx, switcher.SwitchOptions{}); err != nil || rep.To != blue.Addr() {
		t.Fatalf("rollback after promote: %+v, %v", rep, err)
	}
}

func TestPromotingADeadCanaryIsRefused(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	r := newRig(t, blue.Addr(), testrig.FastSettings())
	if _, err := r.Switcher.Canary(context.Background(), green.Addr(), 5, switcher.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	green.SetHealth(http.StatusServiceUnavailable)
	_, err := r.Switcher.Promote(context.Background(), switcher.SwitchOptions{})
	var refused *switcher.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "promotion of the canary "+green.Addr()+" refused") || !strings.Contains(err.Error(), "routiectl abort") {
		t.Fatalf("promoting a canary that fails its probe: %v", err)
	}
	if s := r.Switcher.Status(); s.Active.Addr != blue.Addr() || s.Canary == nil {
		t.Fatalf("after the refusal: active %s, canary %+v; want blue with the canary still running", s.Active.Addr, s.Canary)
	}
}

func TestRestartKeepsTheCanaryAndItsClientsSides(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	store := switcher.NewStore(t.TempDir())
	first := newRigWithStore(t, blue.Addr(), testrig.FastSettings(), store)
	if _, err := first.Switcher.Canary(context.Background(), green.Addr(), 30, switcher.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	onCanary := canaryCookie(t, first)
	saved, _ := store.Load()
	onActive := fmt.Sprintf("%s=%d", proxy.CanaryCookie, (proxy.ShareScale-saved.CanarySalt+5000)%proxy.ShareScale) // turned: 5000, above 30%
	first.Switcher.Close()

	second := newRigWithStore(t, blue.Addr(), testrig.FastSettings(), store)
	s := second.Switcher.Status()
	if s.Active.Addr != blue.Addr() || s.Canary == nil || s.Canary.Addr != green.Addr() || s.Weight != 30 {
		t.Fatalf("after restart: active %s, canary %+v at %d%%; want blue with green at 30%%", s.Active.Addr, s.Canary, s.Weight)
	}
	for _, tc := range []struct{ cookie, want string }{{onCanary, "green"}, {onActive, "blue"}} {
		for range 10 {
			req, _ := http.NewRequest(http.MethodGet, second.Front.URL+"/", nil)
			req.Header.Set("Cookie", tc.cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if by := resp.Header.Get("X-App"); by != tc.want {
				t.Fatalf("after restart the client with %q went to %q, want %s", tc.cookie, by, tc.want)
			}
		}
	}
}
