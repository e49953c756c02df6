package control

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/switcher"
)

// kinds lists the kinds of a stream's lines: the events', then "result" or "error".
func kinds(lines []StreamLine) []string {
	var out []string
	for _, l := range lines {
		switch {
		case l.Event != nil:
			out = append(out, l.Event.Kind)
		case l.Result != nil:
			out = append(out, "result")
		case l.Error != nil:
			out = append(out, "error")
		}
	}
	return out
}

func TestCanaryAnswerStreamsTheGateThenTheCanaryAndEndsWithItsWeight(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	r := newRig(t, blue)
	resp, body := r.raw(t, http.MethodPost, PathCanary, `{"target":"`+green.Port()+`","weight":5}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("POST %s: %s %s", PathCanary, resp.Status, resp.Header.Get("Content-Type"))
	}
	lines := readLines(t, body)
	if got, want := kinds(lines), []string{"probe", "probe", "canary", "result"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("lines %v, want %v:\n%s", got, want, body)
	}
	ev, res := lines[2].Event, lines[3].Result
	if ev.From != blue.Addr() || ev.To != green.Addr() || ev.Weight != 5 {
		t.Errorf("canary event %+v", ev)
	}
	if res.From != blue.Addr() || res.To != green.Addr() || res.Weight != 5 {
		t.Errorf("result %+v", res)
	}
	s, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.Canary == nil || s.Canary.Addr != green.Addr() || s.Weight != 5 || s.Active.Addr != blue.Addr() {
		t.Fatalf("status: active %s, canary %+v at %d%%", s.Active.Addr, s.Canary, s.Weight)
	}
	r.WaitForLog(t, `outcome=started from=`+blue.Addr()+` to=`+green.Addr())
}

func TestCanaryWeightPromoteAndAbortOverTheSocket(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	r := newRig(t, blue)
	ctx := t.Context()
	if _, err := r.client.Canary(ctx, CanaryRequest{Target: green.Port(), Weight: 5}, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := r.client.SetCanaryWeight(ctx, 25)
	if err != nil || rep.Weight != 25 || rep.To != green.Addr() {
		t.Fatalf("weight 25: %+v, %v", rep, err)
	}
	if s := r.Switcher.Status(); s.Weight != 25 {
		t.Fatalf("weight after the change: %d", s.Weight)
	}

	var events []string
	rep, err = r.client.Promote(ctx, PromoteRequest{}, func(e switcher.Event) { events = append(events, e.Kind) })
	if err != nil || rep.From != blue.Addr() || rep.To != green.Addr() || rep.Drain == nil {
		t.Fatalf("promote: %+v, %v", rep, err)
	}
	if want := []string{"probe", "swap", "drained"}; !reflect.DeepEqual(events, want) {
		t.Errorf("promote events %v, want %v", events, want)
	}
	if s := r.Switcher.Status(); s.Active.Addr != green.Addr() || s.Canary != nil || s.Standby == nil || s.Standby.Addr != blue.Addr() {
		t.Fatalf("after promote: %+v", s)
	}

	// Now blue is the canary, and it is dropped.
	if _, err := r.client.Canary(ctx, CanaryRequest{Target: blue.Port(), Weight: 10}, nil); err != nil {
		t.Fatal(err)
	}
	events = nil
	rep, err = r.client.AbortCanary(ctx, func(e switcher.Event) { events = append(events, e.Kind) })
	if err != nil || rep.From != blue.Addr() || rep.To != green.Addr() || rep.Drain == nil {
		t.Fatalf("abort: %+v, %v", rep, err)
	}
	if want := []string{"canary_aborted", "drained"}; !reflect.DeepEqual(events, want) {
		t.Errorf("abort events %v, want %v", events, want)
	}
	if s := r.Switcher.Status(); s.Active.Addr != green.Addr() || s.Canary != nil {
		t.Fatalf("after abort: %+v", s)
	}
	for _, want := range []string{`msg="canary weight done" weight=25`, `msg="promote done"`, `msg="canary abort done"`, `outcome=aborted from=` + blue.Addr()} {
		r.WaitForLog(t, want)
	}
}

func TestCanaryRefusalsAreConflictsNamingTheWayOut(t *testing.T) {
	blue, green, gray := testrig.StartApp(t, ""), testrig.StartApp(t, ""), testrig.StartApp(t, "")
	r := newRig(t, blue)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		call func() error
		kind string
		text string
	}{
		{"weight with no canary", func() error { _, err := r.client.SetCanaryWeight(ctx, 20); return err }, KindNoCanary, "no canary is running"},
		{"promote with no canary", func() error { _, err := r.client.Promote(ctx, PromoteRequest{}, nil); return err }, KindNoCanary, "routiectl canary TARGET --weight 5"},
		{"abort with no canary", func() error { _, err := r.client.AbortCanary(ctx, nil); return err }, KindNoCanary, "no canary is running"},
		{"canary of the active target", func() error {
			_, err := r.client.Canary(ctx, CanaryRequest{Target: blue.Port(), Weight: 5}, nil)
			return err
		}, KindAlreadyActive, blue.Addr() + " is the active target already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var e *Error
			if !errors.As(err, &e) || e.Kind != tc.kind || e.Status != http.StatusConflict || !strings.Contains(e.Message, tc.text) {
				t.Fatalf("got %#v, want 409 %s saying %q", err, tc.kind, tc.text)
			}
		})
	}

	if _, err := r.client.Canary(ctx, CanaryRequest{Target: green.Port(), Weight: 5}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"switch", func() error {
			_, err := r.client.Switch(ctx, SwitchRequest{Target: gray.Port()}, nil)
			return err
		}},
		{"rollback", func() error { _, err := r.client.Rollback(ctx, false, nil); return err }},
		{"canary", func() error {
			_, err := r.client.Canary(ctx, CanaryRequest{Target: gray.Port(), Weight: 5}, nil)
			return err
		}},
	} {
		t.Run(tc.name+" while a canary runs", func(t *testing.T) {
			err := tc.call()
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindCanaryRunning || e.Status != http.StatusConflict ||
				!strings.Contains(e.Message, "routiectl promote (keep it) or routiectl abort (drop it)") {
				t.Fatalf("got %#v, want 409 %s", err, KindCanaryRunning)
			}
		})
	}
	if n := gray.Probed(); n != 0 {
		t.Errorf("refused operations probed %s %d times", gray.Addr(), n)
	}
}
