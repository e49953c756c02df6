package switcher_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/routie/routie/switcher"
)

func TestCountersCountEverySwitchAndRollbackOnceByOutcome(t *testing.T) {
	blue, green := startApp(t, "blue"), startApp(t, "green")
	sick := startApp(t, "sick")
	sick.healthy.Store(http.StatusServiceUnavailable)
	r := newRig(t, blue.addr(), fastSettings())
	ctx := context.Background()

	if _, err := r.sw.Rollback(ctx, switcher.SwitchOptions{}); err == nil {
		t.Fatal("rollback with no standby succeeded")
	}
	switchTo(t, r.sw, blue.addr()) // already active
	if _, err := r.sw.Switch(ctx, sick.addr(), switcher.SwitchOptions{Wait: 50 * time.Millisecond}); err == nil {
		t.Fatal("switch to an unhealthy target succeeded")
	}
	if _, err := r.sw.Switch(ctx, "127.0.0.1:0", switcher.SwitchOptions{}); err == nil {
		t.Fatal("switch to port 0 succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.sw.Switch(cancelled, green.addr(), switcher.SwitchOptions{}); err == nil {
		t.Fatal("switch with a cancelled context succeeded")
	}
	switchTo(t, r.sw, green.addr())
	if _, err := r.sw.Rollback(ctx, switcher.SwitchOptions{}); err != nil {
		t.Fatalf("rollback: %v", err)
	}

	got := r.sw.Counters()
	want := switcher.Counters{
		Switches:  switcher.Outcomes{OK: 1, Refused: 1, Failed: 2, NoOp: 1},
		Rollbacks: switcher.Outcomes{OK: 1, Refused: 1},
		Drains:    2, // the switch's and the rollback's; Switch returns after the drain
	}
	got.DrainTime = 0 // measured, checked below
	if got != want {
		t.Errorf("Counters() =\n%+v\nwant\n%+v", got, want)
	}
	if r.sw.Counters().DrainTime <= 0 {
		t.Error("DrainTime is zero after two drains")
	}
}

func TestCountersCountRequestsCancelledAtTheDrainDeadline(t *testing.T) {
	blue, green := startApp(t, "blue"), startApp(t, "green")
	st := fastSettings()
	st.DrainTimeout = 50 * time.Millisecond
	r := newRig(t, blue.addr(), st)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(r.front.URL + "/hold")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-blue.held
	switchTo(t, r.sw, green.addr())
	<-done
	if c := r.sw.Counters(); c.Drains != 1 || c.DrainCancelled != 1 || c.DrainTime < st.DrainTimeout {
		t.Errorf("Counters() = %+v; want 1 drain of at least %s that cancelled 1 request", c, st.DrainTimeout)
	}
}

func TestKnownListsActiveStandbyAndDrainingTargetsOnly(t *testing.T) {
	blue, green, red := startApp(t, "blue"), startApp(t, "green"), startApp(t, "red")
	st := fastSettings()
	r := newRig(t, blue.addr(), st)
	roles := func() map[string]switcher.Role {
		m := map[string]switcher.Role{}
		for _, k := range r.sw.Known() {
			m[k.Target.Addr()] = k.Role
		}
		return m
	}
	if got := roles(); len(got) != 1 || got[blue.addr()] != switcher.RoleActive {
		t.Fatalf("Known() at start = %v, want blue active only", got)
	}

	// Blue holds a request across two switches: it drains while it is neither active nor
	// standby.
	go http.Get(r.front.URL + "/hold")
	<-blue.held
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // do not wait for blue's drain
	if _, err := r.sw.Switch(ctx, green.addr(), switcher.SwitchOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.sw.Switch(ctx, red.addr(), switcher.SwitchOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	got := roles()
	want := map[string]switcher.Role{red.addr(): switcher.RoleActive, green.addr(): switcher.RoleStandby, blue.addr(): switcher.RoleDraining}
	if len(got) != len(want) {
		t.Fatalf("Known() = %v, want %v", got, want)
	}
	for addr, role := range want {
		if got[addr] != role {
			t.Errorf("Known() = %v, want %v", got, want)
		}
	}

	close(blue.release)
	waitFor(t, "blue to be forgotten once drained", func() bool { _, ok := roles()[blue.addr()]; return !ok })
}
