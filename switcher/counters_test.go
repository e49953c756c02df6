package switcher_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/switcher"
)

func TestCountersCountEverySwitchAndRollbackOnceByOutcome(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	sick := testrig.StartApp(t, "sick")
	sick.SetHealth(http.StatusServiceUnavailable)
	r := newRig(t, blue.Addr(), testrig.FastSettings())
	ctx := context.Background()

	if _, err := r.Switcher.Rollback(ctx, switcher.SwitchOptions{}); err == nil {
		t.Fatal("rollback with no standby succeeded")
	}
	switchTo(t, r.Switcher, blue.Addr()) // already active
	if _, err := r.Switcher.Switch(ctx, sick.Addr(), switcher.SwitchOptions{Wait: 50 * time.Millisecond}); err == nil {
		t.Fatal("switch to an unhealthy target succeeded")
	}
	if _, err := r.Switcher.Switch(ctx, "127.0.0.1:0", switcher.SwitchOptions{}); err == nil {
		t.Fatal("switch to port 0 succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Switcher.Switch(cancelled, green.Addr(), switcher.SwitchOptions{}); err == nil {
		t.Fatal("switch with a cancelled context succeeded")
	}
	switchTo(t, r.Switcher, green.Addr())
	if _, err := r.Switcher.Rollback(ctx, switcher.SwitchOptions{}); err != nil {
		t.Fatalf("rollback: %v", err)
	}

	got := r.Switcher.Counters()
	want := switcher.Counters{
		Switches:  switcher.Outcomes{OK: 1, Refused: 1, Failed: 2, NoOp: 1},
		Rollbacks: switcher.Outcomes{OK: 1, Refused: 1},
		Drains:    2, // the switch's and the rollback's; Switch returns after the drain
	}
	got.DrainTime = 0 // measured, checked below
	if got != want {
		t.Errorf("Counters() =\n%+v\nwant\n%+v", got, want)
	}
	if r.Switcher.Counters().DrainTime <= 0 {
		t.Error("DrainTime is zero after two drains")
	}
}

func TestCountersCountRequestsCancelledAtTheDrainDeadline(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	st := testrig.FastSettings()
	st.DrainTimeout = 50 * time.Millisecond
	r := newRig(t, blue.Addr(), st)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(r.Front.URL + "/hold")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-blue.Held()
	switchTo(t, r.Switcher, green.Addr())
	<-done
	if c := r.Switcher.Counters(); c.Drains != 1 || c.DrainCancelled != 1 || c.DrainTime < st.DrainTimeout {
		t.Errorf("Counters() = %+v; want 1 drain of at least %s that cancelled 1 request", c, st.DrainTimeout)
	}
}

func TestKnownListsActiveStandbyAndDrainingTargetsOnly(t *testing.T) {
	blue, green, red := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green"), testrig.StartApp(t, "red")
	st := testrig.FastSettings()
	r := newRig(t, blue.Addr(), st)
	roles := func() map[string]switcher.Role {
		m := map[string]switcher.Role{}
		for _, k := range r.Switcher.Known() {
			m[k.Target.Addr()] = k.Role
		}
		return m
	}
	if got := roles(); len(got) != 1 || got[blue.Addr()] != switcher.RoleActive {
		t.Fatalf("Known() at start = %v, want blue active only", got)
	}

	// Blue holds a request across two switches: it drains while it is neither active nor
	// standby.
	go http.Get(r.Front.URL + "/hold")
	<-blue.Held()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // do not wait for blue's drain
	if _, err := r.Switcher.Switch(ctx, green.Addr(), switcher.SwitchOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Switcher.Switch(ctx, red.Addr(), switcher.SwitchOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	got := roles()
	want := map[string]switcher.Role{red.Addr(): switcher.RoleActive, green.Addr(): switcher.RoleStandby, blue.Addr(): switcher.RoleDraining}
	if len(got) != len(want) {
		t.Fatalf("Known() = %v, want %v", got, want)
	}
	for addr, role := range want {
		if got[addr] != role {
			t.Errorf("Known() = %v, want %v", got, want)
		}
	}

	blue.Release()
	testrig.WaitFor(t, "blue to be forgotten once drained", func() bool { _, ok := roles()[blue.Addr()]; return !ok })
}
