package main

import (
	"bufio"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/control"
	"github.com/routie/routie/health"
	"github.com/routie/routie/switcher"
)

var at = time.Now().Add(-3 * time.Second)

func passed(detail string) *health.Result {
	return &health.Result{Target: "127.0.0.1:8081", Passed: true, Status: 200, Detail: detail, At: at}
}

// deploy is the events of a switch from 8080 to 8081, as the switcher reports them.
func deploy() []switcher.Event {
	drain := &switcher.DrainReport{Waited: 3, Took: 410 * time.Millisecond, Streams: 2}
	return []switcher.Event{
		{Kind: switcher.EventProbe, At: at, Passes: 1, Needed: 2, Probe: passed("HTTP 200 in 2ms")},
		{Kind: switcher.EventProbe, At: at, Passes: 2, Needed: 2, Probe: passed("HTTP 200 in 1ms")},
		{Kind: switcher.EventSwap, At: at, From: "127.0.0.1:8080", To: "127.0.0.1:8081"},
		{Kind: switcher.EventDrained, At: at, From: "127.0.0.1:8080", Drain: drain},
	}
}

const deployOutput = `probe 1/2 127.0.0.1:8081 passed: HTTP 200 in 2ms
probe 2/2 127.0.0.1:8081 passed: HTTP 200 in 1ms
switched 127.0.0.1:8080 → 127.0.0.1:8081
drained 127.0.0.1:8080: waited for 3 in-flight requests (0.41s), 0 cancelled; 2 streams keep drain.streams
`

func TestSwitchPrintsEachStepAsItHappens(t *testing.T) {
	firstLineRead := make(chan struct{})
	fake := &fakeSwitcher{
		events: deploy(),
		report: switcher.Report{From: "127.0.0.1:8080", To: "127.0.0.1:8081", Drain: deploy()[3].Drain},
		calls:  make(chan fakeCall, 1),
		afterEvent: func(i int) {
			if i == 0 {
				// The switch goes on only once routiectl has printed the first probe.
				select {
				case <-firstLineRead:
				case <-time.After(10 * time.Second):
					t.Error("routiectl did not print the first probe while the switch was gating")
				}
			}
		},
	}
	socket := startDaemon(t, fake)

	// Flags after the target, as an operator types them.
	cmd := routiectlCmd(t, socket, "switch", "8081", "--wait", "10s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	first, err := out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	close(firstLineRead)
	rest, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("routiectl switch: %v; stderr: %s", err, stderr.String())
	}
	if got := first + string(rest); got != deployOutput {
		t.Errorf("output:\n%s\nwant:\n%s", got, deployOutput)
	}
	if call := <-fake.calls; call.target != "8081" || call.opts.Wait != 10*time.Second || call.opts.Force {
		t.Errorf("switcher got target %q wait %s force %t; want 8081 10s false", call.target, call.opts.Wait, call.opts.Force)
	}
}

func TestSwitchToTheActiveTargetIsANoOpThatExitsZero(t *testing.T) {
	socket := startDaemon(t, &fakeSwitcher{report: switcher.Report{From: "127.0.0.1:8081", To: "127.0.0.1:8081", NoOp: true}})
	got := runCLI(t, socket, "switch", "8081")
	if want := "127.0.0.1:8081 is already active; nothing to do\n"; got.code != 0 || got.stdout != want || got.stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0 and %q", got.code, got.stdout, got.stderr, want)
	}
}

func TestForcedSwitchSaysTheGateWasSkipped(t *testing.T) {
	fake := &fakeSwitcher{
		events: deploy()[2:],
		report: switcher.Report{From: "127.0.0.1:8080", To: "127.0.0.1:8081", Forced: true, Drain: deploy()[3].Drain},
		calls:  make(chan fakeCall, 1),
	}
	socket := startDaemon(t, fake)
	got := runCLI(t, socket, "switch", "--force", "8081")
	if !strings.HasPrefix(got.stdout, "switched 127.0.0.1:8080 → 127.0.0.1:8081 (forced: health gate skipped)\n") || got.code != 0 {
		t.Errorf("exit %d, stdout:\n%s", got.code, got.stdout)
	}
	if call := <-fake.calls; !call.opts.Force {
		t.Error("--force did not reach the switcher")
	}
}

func TestRefusedSwitchExitsOneWithTheReasonAndWhatToTry(t *testing.T) {
	last := health.Result{Target: "127.0.0.1:8081", Status: 503, Detail: "HTTP 503 from GET http://127.0.0.1:8081/actuator/health", At: at}
	refused := &switcher.RefusedError{Target: "127.0.0.1:8081", Last: last, Passes: 0, Needed: 2, Wait: time.Second}
	socket := startDaemon(t, &fakeSwitcher{
		events: []switcher.Event{{Kind: switcher.EventProbe, At: at, Needed: 2, Probe: &last}},
		err:    refused,
	})
	got := runCLI(t, socket, "switch", "8081", "--wait", "1s")
	wantOut := "probe 0/2 127.0.0.1:8081 failed: HTTP 503 from GET http://127.0.0.1:8081/actuator/health\n"
	wantErr := "Error: " + refused.Error() + "\nTry: routiectl health 8081 to probe it again; routiectl switch 8081 --wait 5m to give it longer\n"
	if got.code != 1 || got.stdout != wantOut || got.stderr != wantErr {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1, stdout:\n%s\nstderr:\n%s", got.code, got.stdout, got.stderr, wantOut, wantErr)
	}
}

func TestSwitchWhileAnotherIsGatingExitsOne(t *testing.T) {
	busy := &switcher.InProgressError{Target: "127.0.0.1:8082"}
	got := runCLI(t, startDaemon(t, &fakeSwitcher{err: busy}), "switch", "8081")
	if want := "Error: " + busy.Error() + "\nTry: routiectl status\n"; got.code != 1 || got.stderr != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", got.code, got.stderr, want)
	}
}

func TestBadTargetIsAUsageError(t *testing.T) {
	bad := &switcher.TargetError{Input: "80a1", Reason: "not a port"}
	got := runCLI(t, startDaemon(t, &fakeSwitcher{err: bad}), "switch", "80a1")
	want := "Error: " + bad.Error() + "\nTry: routiectl switch 8081, or routiectl switch 127.0.0.1:8081\n"
	if got.code != 2 || got.stderr != want {
		t.Errorf("exit %d, stderr %q; want 2 and %q", got.code, got.stderr, want)
	}
}

func TestRollbackWithNothingToRollBackToExitsOne(t *testing.T) {
	got := runCLI(t, startDaemon(t, &fakeSwitcher{err: switcher.ErrNoStandby}), "rollback")
	if want := "Error: " + switcher.ErrNoStandby.Error() + "\n"; got.code != 1 || got.stderr != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", got.code, got.stderr, want)
	}
}

func TestInterruptCancelsTheSwitch(t *testing.T) {
	fake := &fakeSwitcher{events: deploy()[:1], block: true, calls: make(chan fakeCall, 1)}
	socket := startDaemon(t, fake)
	cmd := routiectlCmd(t, socket, "switch", "8081")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Once the first probe is printed the health gate is running: press Ctrl-C.
	out := bufio.NewReader(stdout)
	if _, err := out.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, out)
	cmd.Wait()

	call := <-fake.calls
	select {
	case <-call.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Ctrl-C did not cancel the switch in routied")
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.HasPrefix(stderr.String(), "Error: interrupted: ") {
		t.Errorf("exit %d, stderr %q; want 1 and Error: interrupted…", code, stderr.String())
	}
}

func TestStatusShowsActiveAndStandbyWithTheirHealth(t *testing.T) {
	since := time.Now().Add(-3 * time.Minute)
	fake := &fakeSwitcher{status: switcher.Status{
		Active: switcher.TargetStatus{Addr: "127.0.0.1:8081", Health: health.Up, InFlight: 3, Conns: 12, Served: 1234,
			Last: passed("HTTP 200 in 2ms")},
		Standby:   &switcher.TargetStatus{Addr: "127.0.0.1:8080", Health: health.Down, Served: 1000},
		Switching: "127.0.0.1:8082",
		Since:     since,
	}}
	got := runCLI(t, startDaemon(t, fake), "status")
	// The ages depend on when the test runs; a slow machine may add a few seconds.
	want := regexp.MustCompile(`^` + strings.Join([]string{
		`active    127\.0\.0\.1:8081  up  since ` + regexp.QuoteMeta(since.Format(time.DateTime)) + ` \(3m\d+s ago\)`,
		`          3 in flight, 0 streams, 12 connections, 1234 served`,
		`          last probe \d+s ago: passed: HTTP 200 in 2ms`,
		`standby   127\.0\.0\.1:8080  down`,
		`          0 in flight, 0 streams, 0 connections, 1000 served`,
		`switching 127\.0\.0\.1:8082: health gate running`,
		`routied   dev`,
	}, "\n") + "\n$")
	if got.code != 0 || !want.MatchString(got.stdout) {
		t.Errorf("exit %d, stdout:\n%s\nwant it to match:\n%s", got.code, got.stdout, want)
	}
}

func TestStatusJSONPrintsTheDaemonsAnswerAsIs(t *testing.T) {
	fake := &fakeSwitcher{status: switcher.Status{Active: switcher.TargetStatus{Addr: "127.0.0.1:8081", Health: health.Up}}}
	socket := startDaemon(t, fake)
	raw, err := control.NewClient(socket).StatusJSON(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := runCLI(t, socket, "status", "--json")
	if got.code != 0 || got.stdout != string(raw) {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", got.code, got.stdout, raw)
	}
}

func TestHealthExitsOneWhenTheProbeFails(t *testing.T) {
	ok := runCLI(t, startDaemon(t, &fakeSwitcher{probe: *passed("HTTP 200 in 2ms")}), "health", "8081")
	if ok.code != 0 || ok.stdout != "127.0.0.1:8081 passed: HTTP 200 in 2ms\n" {
		t.Errorf("passing probe: exit %d, stdout %q", ok.code, ok.stdout)
	}
	down := health.Result{Target: "127.0.0.1:8081", Detail: "connection refused: nothing is listening on 127.0.0.1:8081"}
	bad := runCLI(t, startDaemon(t, &fakeSwitcher{probe: down}), "health", "8081")
	if bad.code != 1 || bad.stdout != "127.0.0.1:8081 failed: connection refused: nothing is listening on 127.0.0.1:8081\n" || bad.stderr != "" {
		t.Errorf("failing probe: exit %d, stdout %q, stderr %q", bad.code, bad.stdout, bad.stderr)
	}
}
