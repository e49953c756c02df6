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
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/switcher"
)

var at = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// deploy is the events of a switch from 8080 to 8081, as the switcher reports them.
func deploy() []switcher.Event {
	return []switcher.Event{
		{Kind: switcher.EventProbe, At: at, Passes: 1, Needed: 2,
			Probe: &health.Result{Target: "127.0.0.1:8081", Passed: true, Status: 200, Detail: "HTTP 200 in 2ms", Took: 2 * time.Millisecond, At: at}},
		{Kind: switcher.EventProbe, At: at.Add(time.Second), Passes: 2, Needed: 2,
			Probe: &health.Result{Target: "127.0.0.1:8081", Passed: true, Status: 200, Detail: "HTTP 200 in 1ms", Took: time.Millisecond, At: at.Add(time.Second)}},
		{Kind: switcher.EventSwap, At: at.Add(time.Second), From: "127.0.0.1:8080", To: "127.0.0.1:8081"},
		{Kind: switcher.EventDrained, At: at.Add(2 * time.Second), From: "127.0.0.1:8080",
			Drain: &switcher.DrainReport{Waited: 3, Took: 410 * time.Millisecond, Streams: 2}},
	}
}

func deployReport() switcher.Report {
	return switcher.Report{From: "127.0.0.1:8080", To: "127.0.0.1:8081",
		Drain: &switcher.DrainReport{Waited: 3, Took: 410 * time.Millisecond, Streams: 2}}
}

func TestStatusReturnsTheSwitcherStatusAndTheDaemonVersion(t *testing.T) {
	want := switcher.Status{
		Active: switcher.TargetStatus{Addr: "127.0.0.1:8081", Health: health.Up, InFlight: 3, Conns: 12,
			Served: 1<<62 + 1, // beyond float64 precision: must survive decoding exactly
			Last:   &health.Result{Target: "127.0.0.1:8081", Passed: true, Status: 200, Detail: "HTTP 200 in 2ms", Took: 2 * time.Millisecond, At: at}},
		Standby:  &switcher.TargetStatus{Addr: "127.0.0.1:8080", Health: health.Down},
		Draining: []switcher.TargetStatus{{Addr: "127.0.0.1:8079", Health: health.Unknown, InFlight: 1}},
		Since:    at,
	}
	d := startDaemon(t, &fakeSwitcher{status: want})

	got, err := d.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Status, want) {
		t.Errorf("status:\n got %+v\nwant %+v", got.Status, want)
	}
	if got.Version != Version {
		t.Errorf("version %q, want %q", got.Version, Version)
	}

	resp, body := d.raw(t, http.MethodGet, PathStatus, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET %s: %s %s", PathStatus, resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, s := range []string{`"health": "up"`, `"version": "` + Version + `"`} {
		if !strings.Contains(body, s) {
			t.Errorf("status JSON lacks %s:\n%s", s, body)
		}
	}
}

func TestVersionNamesTheDaemonVersionAndGo(t *testing.T) {
	d := startDaemon(t, &fakeSwitcher{})
	v, err := d.client.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != Version || v.Go != runtime.Version() {
		t.Errorf("got %+v, want %s and %s", v, Version, runtime.Version())
	}
}

func TestSwitchStreamsEachEventBeforeTheSwitchGoesOn(t *testing.T) {
	events := deploy()
	delivered := make(chan int, len(events))
	fake := &fakeSwitcher{events: events, report: deployReport(), calls: make(chan fakeCall, 1)}
	fake.afterEvent = func(i int) {
		// The switch goes on only once the client has read event i: nothing is buffered.
		select {
		case got := <-delivered:
			if got != i {
				t.Errorf("client got event %d while the switcher was at %d", got, i)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("event %d did not reach the client before the switch went on", i)
		}
	}
	d := startDaemon(t, fake)

	var got []switcher.Event
	rep, err := d.client.Switch(t.Context(), SwitchRequest{Target: "8081", Wait: Duration(10 * time.Second), Force: true},
		func(ev switcher.Event) {
			delivered <- len(got)
			got = append(got, ev)
		})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, events) {
		t.Errorf("events:\n got %+v\nwant %+v", got, events)
	}
	if !reflect.DeepEqual(rep, deployReport()) {
		t.Errorf("report %+v, want %+v", rep, deployReport())
	}
	call := <-fake.calls
	if call.target != "8081" || call.opts.Wait != 10*time.Second || !call.opts.Force || call.opts.Progress == nil {
		t.Errorf("switcher called with target %q, wait %s, force %t, progress set %t; want 8081, 10s, true, true",
			call.target, call.opts.Wait, call.opts.Force, call.opts.Progress != nil)
	}
}

func TestSwitchAnswerIsNDJSONEndingWithTheResult(t *testing.T) {
	d := startDaemon(t, &fakeSwitcher{events: deploy(), report: deployReport()})
	resp, body := d.raw(t, http.MethodPost, PathSwitch, `{"target":"8081","wait":"30s","force":false}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("got %s %s, want 200 application/x-ndjson", resp.Status, resp.Header.Get("Content-Type"))
	}
	lines := readLines(t, body)
	if len(lines) != len(deploy())+1 {
		t.Fatalf("got %d lines, want %d events and a result:\n%s", len(lines), len(deploy()), body)
	}
	for i, l := range lines[:len(lines)-1] {
		if l.Event == nil || l.Event.Kind != deploy()[i].Kind || l.Result != nil || l.Error != nil {
			t.Errorf("line %d: want only a %s event, got %+v", i+1, deploy()[i].Kind, l)
		}
	}
	if last := lines[len(lines)-1]; last.Result == nil || last.Result.To != "127.0.0.1:8081" {
		t.Errorf("last line: want the result, got %+v", last)
	}
}

func TestNoOpSwitchAnswersWithAOneLineStream(t *testing.T) {
	noop := switcher.Report{From: "127.0.0.1:8081", To: "127.0.0.1:8081", NoOp: true}
	d := startDaemon(t, &fakeSwitcher{report: noop})
	resp, body := d.raw(t, http.MethodPost, PathSwitch, `{"target":"8081"}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("got %s %s, want 200 application/x-ndjson", resp.Status, resp.Header.Get("Content-Type"))
	}
	if lines := readLines(t, body); len(lines) != 1 || lines[0].Result == nil || !lines[0].Result.NoOp {
		t.Errorf("want one result line with noop, got:\n%s", body)
	}
	rep, err := d.client.Switch(t.Context(), SwitchRequest{Target: "8081"}, nil)
	if err != nil || !rep.NoOp {
		t.Errorf("Switch: %+v, %v; want a no-op report", rep, err)
	}
}

func TestErrorsMapToOneStatusCodeEach(t *testing.T) {
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
		{"refused", refused, 422, KindRefused},
		{"wrapped refused", fmt.Errorf("rollback: %w", refused), 422, KindRefused},
		{"cancelled", fmt.Errorf("switch to 127.0.0.1:8081 cancelled before it was healthy: %w", context.Canceled), 503, KindCancelled},
		{"anything else", errors.New("state file: disk full"), 500, KindInternal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t, &fakeSwitcher{err: tc.err})

			// Before any event the answer is plain JSON with the real status.
			resp, body := d.raw(t, http.MethodPost, PathSwitch, `{"target":"8081"}`)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("got %s %s, want %d application/json", resp.Status, resp.Header.Get("Content-Type"), tc.status)
			}
			var line StreamLine
			if err := json.Unmarshal([]byte(body), &line); err != nil || line.Error == nil {
				t.Fatalf("body %q is not {\"error\":…}: %v", body, err)
			}
			want := Error{Kind: tc.kind, Message: tc.err.Error(), Status: tc.status}
			if *line.Error != want {
				t.Errorf("error %+v, want %+v", *line.Error, want)
			}

			// The client returns the same as a *Error.
			_, err := d.client.Rollback(t.Context(), false, nil)
			var e *Error
			if !errors.As(err, &e) || *e != want {
				t.Errorf("client error %#v, want %+v", err, want)
			}
		})
	}
}

func TestRefusalAfterProbesEndsTheStreamWithA422Error(t *testing.T) {
	probe := deploy()[0]
	refused := &switcher.RefusedError{Target: "127.0.0.1:8081", Passes: 1, Needed: 3, Wait: time.Second, Last: *probe.Probe}
	d := startDaemon(t, &fakeSwitcher{events: []switcher.Event{probe}, err: refused})

	resp, body := d.raw(t, http.MethodPost, PathSwitch, `{"target":"8081"}`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %s: a started stream has already said 200", resp.Status)
	}
	lines := readLines(t, body)
	want := Error{Kind: KindRefused, Message: refused.Error(), Status: 422}
	if len(lines) != 2 || lines[0].Event == nil || lines[1].Error == nil || *lines[1].Error != want {
		t.Errorf("want a probe event then %+v, got:\n%s", want, body)
	}

	var events int
	_, err := d.client.Switch(t.Context(), SwitchRequest{Target: "8081"}, func(switcher.Event) { events++ })
	var e *Error
	if events != 1 || !errors.As(err, &e) || *e != want {
		t.Errorf("client: %d events and %#v; want 1 and %+v", events, err, want)
	}
}

func TestBadRequestsGet400SayingWhatToSend(t *testing.T) {
	const sendTarget = `send {"target": "8081"}`
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeSwitcher{calls: make(chan fakeCall, 1)}
			d := startDaemon(t, fake)
			resp, body := d.raw(t, http.MethodPost, tc.path, tc.body)
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
			if len(fake.calls) != 0 {
				t.Errorf("the switcher was called for a bad request: %+v", <-fake.calls)
			}
		})
	}
}

func TestUnknownRouteGets404ListingTheRoutes(t *testing.T) {
	d := startDaemon(t, &fakeSwitcher{})
	resp, body := d.raw(t, http.MethodGet, "/v2/status", "")
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
	d := startDaemon(t, &fakeSwitcher{})
	for _, tc := range cases {
		resp, body := d.raw(t, tc.method, tc.path, "")
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
	fake := &fakeSwitcher{report: deployReport(), calls: make(chan fakeCall, 2)}
	d := startDaemon(t, fake)
	resp, body := d.raw(t, http.MethodPost, PathRollback, "")
	if resp.StatusCode != http.StatusOK || len(readLines(t, body)) != 1 {
		t.Errorf("got %s:\n%s\nwant 200 and a result line", resp.Status, body)
	}
	if call := <-fake.calls; call.method != "rollback" || call.opts.Force {
		t.Errorf("switcher called %s force %t, want rollback without force", call.method, call.opts.Force)
	}
	if _, err := d.client.Rollback(t.Context(), true, nil); err != nil {
		t.Fatal(err)
	}
	if call := <-fake.calls; !call.opts.Force {
		t.Error("Rollback(force=true) reached the switcher without Force")
	}
}

func TestFailedProbeIsStillA200WithPassedFalse(t *testing.T) {
	failed := health.Result{Target: "127.0.0.1:8081", Detail: "connection refused: nothing is listening on 127.0.0.1:8081", At: at}
	d := startDaemon(t, &fakeSwitcher{probe: failed})
	resp, body := d.raw(t, http.MethodPost, PathHealth, `{"target":"8081"}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"passed": false`) {
		t.Errorf("got %s:\n%s\nwant 200 with passed false", resp.Status, body)
	}
	got, err := d.client.Health(t.Context(), "8081")
	if err != nil || got != failed {
		t.Errorf("Health: %+v, %v; want %+v", got, err, failed)
	}
}

func TestProbeOfABadTargetIs400(t *testing.T) {
	bad := &switcher.TargetError{Input: "eighty", Reason: "not a port"}
	d := startDaemon(t, &fakeSwitcher{probeErr: bad})
	_, err := d.client.Health(t.Context(), "eighty")
	want := Error{Kind: KindBadTarget, Message: bad.Error(), Status: 400}
	var e *Error
	if !errors.As(err, &e) || *e != want {
		t.Errorf("got %#v, want %+v", err, want)
	}
}

func TestHangingUpCancelsTheSwitch(t *testing.T) {
	fake := &fakeSwitcher{events: deploy()[:1], block: true, calls: make(chan fakeCall, 1)}
	d := startDaemon(t, fake)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// Hang up once the health gate has started, as Ctrl-C in routiectl does.
	_, err := d.client.Switch(ctx, SwitchRequest{Target: "8081"}, func(switcher.Event) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Switch: %v, want context.Canceled", err)
	}
	call := <-fake.calls
	select {
	case <-call.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the switcher's context was not cancelled when the client hung up")
	}
	waitForLog(t, d, "outcome=cancelled")
}

func TestChangesAreLoggedWithWhoAskedAndTheOutcome(t *testing.T) {
	d := startDaemon(t, &fakeSwitcher{report: deployReport()})
	if _, err := d.client.Switch(t.Context(), SwitchRequest{Target: "8081"}, nil); err != nil {
		t.Fatal(err)
	}
	me := fmt.Sprintf("uid=%d pid=%d", currentUID(), currentPID())
	for _, want := range []string{
		`msg="switch requested" target=8081 ` + me,
		`msg="switch done" target=8081 ` + me,
		`outcome=switched from=127.0.0.1:8080 to=127.0.0.1:8081`,
	} {
		if !strings.Contains(d.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, d.logs)
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

// waitForLog polls the daemon's log for want: the handler logs after the switcher returns,
// which may be after the client has already gone.
func waitForLog(t *testing.T, d *daemon, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(d.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", want, d.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
