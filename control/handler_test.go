package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/switcher"
)

func TestStatusReturnsTheSwitcherStatusAndTheDaemonVersion(t *testing.T) {
	retired, standby, active, next := testrig.StartApp(t, ""), testrig.StartApp(t, ""), testrig.StartApp(t, ""), testrig.StartApp(t, "")
	next.SetHealth(http.StatusServiceUnavailable) // the switch to it keeps gating
	r := newRig(t, retired)

	// retired is switched away from while it serves a request, and left draining it.
	r.Hold(t, retired)
	ctx, leave := context.WithCancel(t.Context())
	defer leave()
	if _, err := r.Switcher.Switch(ctx, standby.Port(), switcher.SwitchOptions{Progress: func(ev switcher.Event) {
		if ev.Kind == switcher.EventSwap {
			leave() // as a routiectl interrupted after the swap: the drain goes on without it
		}
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Switcher.Switch(t.Context(), active.Port(), switcher.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	// The standby's app stops; a probe sees it.
	standby.Close()
	if res, err := r.Switcher.Probe(t.Context(), standby.Port()); err != nil || res.Passed {
		t.Fatalf("probe of the stopped standby: %+v, %v", res, err)
	}
	r.Gating(t, next)

	want := r.Switcher.Status()
	if want.Active.Health != health.Up || want.Active.Last == nil || want.Standby == nil || want.Standby.Health != health.Down ||
		len(want.Draining) != 1 || want.Draining[0].InFlight != 1 || want.Switching != next.Addr() {
		t.Fatalf("the switcher is not in the state this test needs: %+v", want)
	}
	got, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(onTheWire(got.Status), onTheWire(want)) {
		t.Errorf("status:\n got %+v\nwant %+v", got.Status, want)
	}
	if got.Version != Version {
		t.Errorf("version %q, want %q", got.Version, Version)
	}

	resp, body := r.raw(t, http.MethodGet, PathStatus, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET %s: %s %s", PathStatus, resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, s := range []string{
		`"health": "up"`, `"health": "down"`, `"health": "unknown"`,
		`"switching": "` + next.Addr() + `"`, `"version": "` + Version + `"`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("status JSON lacks %s:\n%s", s, body)
		}
	}
}

// onTheWire is s as it reads back from JSON: its times keep their instant but lose the
// monotonic clock reading and the location.
func onTheWire(s switcher.Status) switcher.Status {
	s.Since = s.Since.UTC()
	fix := func(ts *switcher.TargetStatus) {
		if ts.Last != nil {
			last := *ts.Last
			last.At = last.At.UTC()
			ts.Last = &last
		}
	}
	fix(&s.Active)
	if s.Standby != nil {
		sb := *s.Standby
		fix(&sb)
		s.Standby = &sb
	}
	if s.Canary != nil {
		c := *s.Canary
		fix(&c)
		s.Canary = &c
	}
	s.Draining = slices.Clone(s.Draining)
	for i := range s.Draining {
		fix(&s.Draining[i])
	}
	return s
}

func TestVersionNamesTheDaemonVersionAndGo(t *testing.T) {
	r := newRig(t, testrig.StartApp(t, ""))
	v, err := r.client.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != Version || v.Go != runtime.Version() {
		t.Errorf("got %+v, want %s and %s", v, Version, runtime.Version())
	}
}

func TestSwitchStreamsEachEventBeforeTheSwitchGoesOn(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "", testrig.HoldProbes())
	r := newRig(t, blue)

	events := make(chan switcher.Event, 8)
	type answer struct {
		rep switcher.Report
		err error
	}
	done := make(chan answer, 1)
	go func() {
		rep, err := r.client.Switch(t.Context(), SwitchRequest{Target: green.Port(), Wait: Duration(time.Minute)},
			func(ev switcher.Event) { events <- ev })
		done <- answer{rep, err}
	}()

	close(green.NextProbe(t))
	second := green.NextProbe(t)
	// The switch cannot go on until the second probe is answered, so the first probe's event
	// reaches the client now or the answer is buffered.
	got := []switcher.Event{testrig.Recv(t, events, "the first probe's event while the second probe waits")}
	close(second)
	a := testrig.Recv(t, done, "the switch to end")
	if a.err != nil {
		t.Fatal(a.err)
	}
	for len(events) > 0 {
		got = append(got, <-events)
	}

	kinds := make([]string, len(got))
	for i, ev := range got {
		kinds[i] = ev.Kind
	}
	if want := []string{switcher.EventProbe, switcher.EventProbe, switcher.EventSwap, switcher.EventDrained}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v: %+v", kinds, want, got)
	}
	for i, ev := range got[:2] {
		if p := ev.Probe; p == nil || p.Target != green.Addr() || !p.Passed || ev.Passes != i+1 || ev.Needed != 2 {
			t.Errorf("probe event %d: %+v with probe %+v; want %s passed, %d of 2 passes", i+1, ev, p, green.Addr(), i+1)
		}
	}
	if swap := got[2]; swap.From != blue.Addr() || swap.To != green.Addr() {
		t.Errorf("swap event %+v, want from %s to %s", swap, blue.Addr(), green.Addr())
	}
	drained := got[3]
	if drained.From != blue.Addr() || drained.Drain == nil || drained.Drain.Waited != 0 {
		t.Errorf("drained event %+v, want %s with nothing in flight", drained, blue.Addr())
	}
	if want := (switcher.Report{From: blue.Addr(), To: green.Addr(), Drain: drained.Drain}); !reflect.DeepEqual(a.rep, want) {
		t.Errorf("report %+v, want %+v", a.rep, want)
	}
}

func TestSwitchAnswerIsNDJSONEndingWithTheResult(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	r := newRig(t, blue)
	resp, body := r.raw(t, http.MethodPost, PathSwitch, `{"target":"`+green.Port()+`","wait":"30s","force":false}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("got %s %s, want 200 application/x-ndjson", resp.Status, resp.Header.Get("Content-Type"))
	}
	lines := readLines(t, body)
	wantKinds := []string{switcher.EventProbe, switcher.EventProbe, switcher.EventSwap, switcher.EventDrained}
	if len(lines) != len(wantKinds)+1 {
		t.Fatalf("got %d lines, want %d events and a result:\n%s", len(lines), len(wantKinds), body)
	}
	for i, l := range lines[:len(lines)-1] {
		if l.Event == nil || l.Event.Kind != wantKinds[i] || l.Result != nil || l.Error != nil {
			t.Errorf("line %d: want only a %s event, got %+v", i+1, wantKinds[i], l)
		}
	}
	if last := lines[len(lines)-1]; last.Result == nil || last.Result.To != green.Addr() || last.Event != nil || last.Error != nil {
		t.Errorf("last line: want only the result, got %+v", last)
	}
}

func TestNoOpSwitchAnswersWithAOneLineStream(t *testing.T) {
	blue := testrig.StartApp(t, "")
	r := newRig(t, blue)
	resp, body := r.raw(t, http.MethodPost, PathSwitch, `{"target":"`+blue.Port()+`"}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("got %s %s, want 200 application/x-ndjson", resp.Status, resp.Header.Get("Content-Type"))
	}
	if lines := readLines(t, body); len(lines) != 1 || lines[0].Result == nil || !lines[0].Result.NoOp {
		t.Errorf("want one result line with noop, got:\n%s", body)
	}
	rep, err := r.client.Switch(t.Context(), SwitchRequest{Target: blue.Port()}, nil)
	if err != nil || !rep.NoOp || rep.To != blue.Addr() {
		t.Errorf("Switch: %+v, %v; want a no-op report", rep, err)
	}
}

func TestForcedSwitchSkipsTheHealthGate(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	green.SetHealth(http.StatusServiceUnavailable) // only force switches to it
	r := newRig(t, blue)
	var events []string
	rep, err := r.client.Switch(t.Context(), SwitchRequest{Target: green.Port(), Force: true},
		func(ev switcher.Event) { events = append(events, ev.Kind) })
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Forced || rep.To != green.Addr() || !slices.Equal(events, []string{switcher.EventSwap, switcher.EventDrained}) {
		t.Errorf("forced switch: %+v after events %v; want forced to %s with a swap and a drain only", rep, events, green.Addr())
	}
	if n := green.Probed(); n != 0 {
		t.Errorf("a forced switch probed %s %d times", green.Addr(), n)
	}
}

func TestErrorsBeforeAnyEventArePlainJSONWithTheirStatus(t *testing.T) {
	cases := []struct {
		name string
		// provoke readies routied and returns the request that fails, as curl sends it and as
		// the Client does, and the message it should get.
		provoke func(t *testing.T, r *rig, blue, green *testrig.App) (path, body string, call func() error, message string)
		status  int
		kind    string
	}{
		{"bad target", func(t *testing.T, r *rig, blue, green *testrig.App) (string, string, func() error, string) {
			call := func() error {
				_, err := r.client.Switch(t.Context(), SwitchRequest{Target: "80a1"}, nil)
				return err
			}
			return PathSwitch, `{"target":"80a1"}`, call,
				`target "80a1": the port is not a number; write a port such as 8081, or host:port such as 127.0.0.1:8081`
		}, 400, KindBadTarget},

		{"switch in progress", func(t *testing.T, r *rig, blue, green *testrig.App) (string, string, func() error, string) {
			green.SetHealth(http.StatusServiceUnavailable)
			r.Gating(t, green)
			call := func() error {
				_, err := r.client.Rollback(t.Context(), false, nil)
				return err
			}
			return PathSwitch, `{"target":"` + blue.Port() + `"}`, call,
				"switch to " + green.Addr() + " in progress; wait for it to finish (or interrupt the routiectl running it) and try again"
		}, 409, KindInProgress},

		{"no standby", func(t *testing.T, r *rig, blue, green *testrig.App) (string, string, func() error, string) {
			call := func() error {
				_, err := r.client.Rollback(t.Context(), false, nil)
				return err
			}
			return PathRollback, ``, call,
				"no standby target to roll back to: nothing was switched since routied started with an empty state"
		}, 409, KindNoStandby},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
			r := newRig(t, blue)
			path, body, call, message := tc.provoke(t, r, blue, green)
			want := Error{Kind: tc.kind, Message: message, Status: tc.status}

			resp, got := r.raw(t, http.MethodPost, path, body)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("got %s %s, want %d application/json", resp.Status, resp.Header.Get("Content-Type"), tc.status)
			}
			var line StreamLine
			if err := json.Unmarshal([]byte(got), &line); err != nil || line.Error == nil {
				t.Fatalf("body %q is not {\"error\":…}: %v", got, err)
			}
			if *line.Error != want {
				t.Errorf("error %+v, want %+v", *line.Error, want)
			}

			// The client returns the same as a *Error.
			err := call()
			var e *Error
			if !errors.As(err, &e) || *e != want {
				t.Errorf("client error %#v, want %+v", err, want)
			}
		})
	}
}

// The real switcher reaches only some rows of the table on Error over the wire: a refusal
// always follows a probe event (TestRefusalAfterProbesEndsTheStreamWithA422Error), a cancelled
// switch has no client left to answer (TestHangingUpCancelsTheSwitch checks its log), and it
// returns no other error. The mapping itself still follows the table for every row.
func TestErrorForFollowsTheTableOnError(t *testing.T) {
	refused := &switcher.RefusedError{Target: "127.0.0.1:8081", Passes: 1, Needed: 3, Wait: 30 * time.Second,
		Last: health.Result{Detail: "HTTP 503 from GET http://127.0.0.1:8081/actuator/health"}}
	cases := []struct {
		name   string
		err    error
		status int
		kind   string
	}{
		{"bad target", &switcher.TargetError{Input: "80a1", Reason: "not a port"}, 400, KindBadTarget},
		{"switch in progress", &switcher.InProgressError{Target: "127.0.0.1:8082"}, 409, KindInProgress},
		{"no standby", switcher.ErrNoStandby, 409, KindNoStandby},
		{"weight out of range", &switcher.WeightError{Weight: 100}, 400, KindBadRequest},
		{"canary running", &switcher.CanaryRunningError{Canary: "127.0.0.1:8081", Weight: 5, Refused: "switch"}, 409, KindCanaryRunning},
		{"no canary", switcher.ErrNoCanary, 409, KindNoCanary},
		{"canary of the active target", &switcher.ActiveTargetError{Target: "127.0.0.1:8080"}, 409, KindAlreadyActive},
		{"refused", refused, 422, KindRefused},
		{"wrapped refused", fmt.Errorf("rollback: %w", refused), 422, KindRefused},
		{"cancelled", fmt.Errorf("switch to 127.0.0.1:8081 cancelled before it was healthy: %w", context.Canceled), 503, KindCancelled},
		{"deadline", fmt.Errorf("switch: %w", context.DeadlineExceeded), 503, KindCancelled},
		{"anything else", errors.New("state file: disk full"), 500, KindInternal},
	}
	for _, tc := range cases {
		want := Error{Kind: tc.kind, Message: tc.err.Error(), Status: tc.status}
		if got := errorFor(tc.err); *got != want {
			t.Errorf("%s: got %+v, want %+v", tc.name, *got, want)
		}
	}
}

func TestRefusalAfterProbesEndsTheStreamWithA422Error(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	green.SetHealth(http.StatusInternalServerError)
	r := newRig(t, blue)
	want := Error{
		Kind: KindRefused,
		Message: fmt.Sprintf("switch to %s refused: not healthy after 200ms (0 of 2 passes); last probe failed: HTTP 500 from GET http://%s/actuator/health",
			green.Addr(), green.Addr()),
		Status: 422,
	}

	resp, body := r.raw(t, http.MethodPost, PathSwitch, `{"target":"`+green.Port()+`","wait":"200ms"}`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %s: a started stream has already said 200", resp.Status)
	}
	lines := readLines(t, body)
	if len(lines) < 2 {
		t.Fatalf("want probe events then the refusal, got:\n%s", body)
	}
	for i, l := range lines[:len(lines)-1] {
		if l.Event == nil || l.Event.Kind != switcher.EventProbe || l.Event.Probe == nil || l.Event.Probe.Passed {
			t.Errorf("line %d: want a failed probe, got %+v", i+1, l)
		}
	}
	if last := lines[len(lines)-1]; last.Error == nil || *last.Error != want {
		t.Errorf("last line: want %+v, got:\n%s", want, body)
	}

	var events int
	_, err := r.client.Switch(t.Context(), SwitchRequest{Target: green.Port(), Wait: Duration(200 * time.Millisecond)},
		func(switcher.Event) { events++ })
	var e *Error
	if events == 0 || !errors.As(err, &e) || *e != want {
		t.Errorf("client: %d events and %#v; want some and %+v", events, err, want)
	}
	if got := r.Switcher.Status().Active.Addr; got != blue.Addr() {
		t.Errorf("active target %s after a refused switch, want %s", got, blue.Addr())
	}
}

func TestBadRequestsGet400SayingWhatToSend(t *testing.T) {
	const sendTarget = `send {"target": "8081"}`
	// In the bodies, 8081 stands for the port of an app that would pass the health gate.
	cases := []struct {
		name, path, body, want string
	}{
		{"empty switch body", PathSwitch, ``, `empty body; ` + sendTarget},
		{"truncated JSON", PathSwitch, `{"target":`, `malformed JSON: the body ends inside a value; ` + sendTarget},
		{"not JSON", PathSwitch, `{target: "8081"}`, `malformed JSON at byte 2: invalid character 't' looking for beginning of object key string; ` + sendTarget},
		{"not an object", PathSwitch, `["8081"]`, `the body must be a JSON object, not an array; ` + sendTarget},
		{"unknown field", PathSwitch, `{"taget":"8081"}`, `unknown field "taget"; ` + sendTarget},
		{"missing target", PathSwitch, `{"wait":"30s"}`, `missing "target"; ` + sendTarget},
		{"target as a number", PathSwitch, `{"target":8081}`, `"target" must be a string, not a number; ` + sendTarget},
		{"wait without unit", PathSwitch, `{"target":"8081","wait":"30"}`, `"wait": "30" is not a duration; write a number with a unit, such as "30s" or "2m"`},
		{"wait as a number", PathSwitch, `{"target":"8081","wait":30}`, `"wait" must be a duration string such as "30s", not a number; ` + sendTarget},
		{"negative wait", PathSwitch, `{"target":"8081","wait":"-5s"}`, `"wait": -5s is negative; send a positive duration such as "30s", or leave it out to use health.wait`},
		{"two objects", PathSwitch, `{"target":"8081"} {"target":"8080"}`, `unexpected data after the JSON object; ` + sendTarget},
		{"rollback unknown field", PathRollback, `{"forse":true}`, `unknown field "forse"; send {"force": false} or an empty body`},
		{"health missing target", PathHealth, `{}`, `missing "target"; send {"target": "8081"}`},
		{"canary missing weight", PathCanary, `{"target":"8081"}`, `missing "weight"; send {"target": "8081", "weight": 5}`},
		{"canary missing target", PathCanary, `{"weight":5}`, `missing "target"; send {"target": "8081", "weight": 5}`},
		{"canary weight as a string", PathCanary, `{"target":"8081","weight":"5%"}`, `"weight" must be a whole number, not a string; send {"target": "8081", "weight": 5}`},
		{"canary weight out of range", PathCanary, `{"target":"8081","weight":150}`, `weight 150 is out of range: a canary takes 1 to 99 percent of the clients`},
		{"weight missing", PathCanaryWeight, `{}`, `missing "weight"; send {"weight": 25}, a percentage from 1 to 99`},
		{"promote unknown field", PathPromote, `{"forse":true}`, `unknown field "forse"; send {"force": false} or an empty body`},
		{"abort with a body", PathCanaryAbort, `{"target":"8081"}`, `unknown field "target"; send an empty body or {}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
			r := newRig(t, blue)
			resp, body := r.raw(t, http.MethodPost, tc.path, strings.ReplaceAll(tc.body, "8081", green.Port()))
			var line StreamLine
			if err := json.Unmarshal([]byte(body), &line); err != nil || line.Error == nil {
				t.Fatalf("body %q is not {\"error\":…}: %v", body, err)
			}
			if resp.StatusCode != 400 || line.Error.Status != 400 || line.Error.Kind != KindBadRequest {
				t.Errorf("got %s with %+v, want 400 %s", resp.Status, *line.Error, KindBadRequest)
			}
			if !strings.HasPrefix(line.Error.Message, tc.want) {
				t.Errorf("message:\n got %s\nwant %s…", line.Error.Message, tc.want)
			}
			// Nothing happened: no probe, no switch, nothing logged as requested.
			if n := green.Probed(); n != 0 {
				t.Errorf("a bad request probed %s %d times", green.Addr(), n)
			}
			if s := r.Switcher.Status(); s.Active.Addr != blue.Addr() || s.Standby != nil || s.Switching != "" {
				t.Errorf("a bad request changed the switcher: %+v", s)
			}
			if strings.Contains(r.Logs.String(), "requested") {
				t.Errorf("a bad request was logged as a switch or rollback:\n%s", r.Logs)
			}
		})
	}
}

func TestUnknownRouteGets404ListingTheRoutes(t *testing.T) {
	r := newRig(t, testrig.StartApp(t, ""))
	resp, body := r.raw(t, http.MethodGet, "/v2/status", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %s, want 404", resp.Status)
	}
	want := `no route GET /v2/status; the routes are GET /v1/status, POST /v1/switch, POST /v1/rollback, POST /v1/health, GET /v1/version`
	if !strings.Contains(body, want) || !strings.Contains(body, `"kind": "not_found"`) {
		t.Errorf("body lacks %q:\n%s", want, body)
	}
}

func TestWrongMethodGets405WithAllow(t *testing.T) {
	cases := []struct{ method, path, allow string }{
		{http.MethodGet, PathSwitch, "POST"},
		{http.MethodPost, PathStatus, "GET"},
		{http.MethodDelete, PathRollback, "POST"},
	}
	r := newRig(t, testrig.StartApp(t, ""))
	for _, tc := range cases {
		resp, body := r.raw(t, tc.method, tc.path, "")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %s Allow %q, want 405 Allow %q", tc.method, tc.path, resp.Status, resp.Header.Get("Allow"), tc.allow)
		}
		want := fmt.Sprintf("%s %s: method not allowed; use %s", tc.method, tc.path, tc.allow)
		if !strings.Contains(body, want) || !strings.Contains(body, `"kind": "method_not_allowed"`) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestRollbackAcceptsAnEmptyBody(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	r := newRig(t, blue)
	if _, err := r.client.Switch(t.Context(), SwitchRequest{Target: green.Port()}, nil); err != nil {
		t.Fatal(err)
	}

	// An empty body is a rollback without force: the standby is probed once first.
	resp, body := r.raw(t, http.MethodPost, PathRollback, "")
	lines := readLines(t, body)
	if resp.StatusCode != http.StatusOK || len(lines) == 0 {
		t.Fatalf("got %s:\n%s\nwant 200 and a stream", resp.Status, body)
	}
	if first := lines[0].Event; first == nil || first.Kind != switcher.EventProbe || first.Probe == nil || first.Probe.Target != blue.Addr() {
		t.Errorf("first line %+v, want the probe of %s", lines[0], blue.Addr())
	}
	if last := lines[len(lines)-1].Result; last == nil || last.From != green.Addr() || last.To != blue.Addr() || last.Forced {
		t.Errorf("last line %+v, want the result of a rollback from %s to %s", lines[len(lines)-1], green.Addr(), blue.Addr())
	}

	// With the standby failing its probe, only force gets back to it.
	green.SetHealth(http.StatusServiceUnavailable)
	probed := green.Probed()
	var events []string
	rep, err := r.client.Rollback(t.Context(), true, func(ev switcher.Event) { events = append(events, ev.Kind) })
	if err != nil {
		t.Fatalf("Rollback(force=true): %v", err)
	}
	if !rep.Forced || rep.To != green.Addr() || slices.Contains(events, switcher.EventProbe) || green.Probed() != probed {
		t.Errorf("Rollback(force=true): %+v after events %v; want a forced rollback to %s without a probe", rep, events, green.Addr())
	}
}

func TestFailedProbeIsStillA200WithPassedFalse(t *testing.T) {
	blue := testrig.StartApp(t, "")
	dead := testrig.DeadPort(t)
	r := newRig(t, blue)
	resp, body := r.raw(t, http.MethodPost, PathHealth, `{"target":"`+dead+`"}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"passed": false`) {
		t.Errorf("got %s:\n%s\nwant 200 with passed false", resp.Status, body)
	}
	got, err := r.client.Health(t.Context(), dead)
	want := "connection refused: nothing is listening on " + dead
	if err != nil || got.Passed || got.Target != dead || got.Status != 0 || got.Detail != want {
		t.Errorf("Health: %+v, %v; want %s failed: %s", got, err, dead, want)
	}

	got, err = r.client.Health(t.Context(), blue.Port())
	if err != nil || !got.Passed || got.Target != blue.Addr() || got.Status != 200 || !strings.HasPrefix(got.Detail, "HTTP 200 in ") {
		t.Errorf("Health of a healthy app: %+v, %v; want %s passed with HTTP 200", got, err, blue.Addr())
	}
}

func TestProbeOfABadTargetIs400(t *testing.T) {
	r := newRig(t, testrig.StartApp(t, ""))
	_, err := r.client.Health(t.Context(), "eighty")
	want := Error{Kind: KindBadTarget, Status: 400,
		Message: `target "eighty": the port is not a number; write a port such as 8081, or host:port such as 127.0.0.1:8081`}
	var e *Error
	if !errors.As(err, &e) || *e != want {
		t.Errorf("got %#v, want %+v", err, want)
	}
}

func TestHangingUpCancelsTheSwitch(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	green.SetHealth(http.StatusServiceUnavailable) // the health gate would run for its whole wait
	r := newRig(t, blue)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// Hang up once the health gate has started, as Ctrl-C in routiectl does.
	_, err := r.client.Switch(ctx, SwitchRequest{Target: green.Port(), Wait: Duration(time.Minute)}, func(switcher.Event) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Switch: %v, want context.Canceled", err)
	}
	// Logged once the switcher has returned, long before the minute of its wait.
	r.WaitForLog(t, `msg="switch not done" target=`+green.Port())
	r.WaitForLog(t, "outcome=cancelled")
	if s := r.Switcher.Status(); s.Switching != "" || s.Active.Addr != blue.Addr() {
		t.Errorf("after the hang-up: switching %q, active %s; want no switch and %s active", s.Switching, s.Active.Addr, blue.Addr())
	}
}

func TestChangesAreLoggedWithWhoAskedAndTheOutcome(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	r := newRig(t, blue)
	if _, err := r.client.Switch(t.Context(), SwitchRequest{Target: green.Port()}, nil); err != nil {
		t.Fatal(err)
	}
	me := fmt.Sprintf("uid=%d pid=%d", currentUID(), currentPID())
	for _, want := range []string{
		`msg="switch requested" target=` + green.Port() + ` ` + me,
		`msg="switch done" target=` + green.Port() + ` ` + me,
		`outcome=switched from=` + blue.Addr() + ` to=` + green.Addr(),
	} {
		if !strings.Contains(r.Logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, r.Logs)
		}
	}
}

func readLines(t *testing.T, body string) []StreamLine {
	t.Helper()
	var lines []StreamLine
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var l StreamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}
