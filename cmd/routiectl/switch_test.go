package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/control"
	"github.com/routie/routie/internal/testrig"
)

// lit matches s literally in a regexp.
var lit = regexp.QuoteMeta

func TestSwitchPrintsEachStepAsItHappens(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "", testrig.HoldProbes())
	r := newRig(t, blue)
	// When blue is retired it serves two requests and one event stream.
	held := []<-chan int{r.Hold(t, blue), r.Hold(t, blue)}
	r.stream(t)

	// Flags after the target, as an operator types them.
	cmd := routiectlCmd(t, r.Socket, "switch", green.Port(), "--wait", "10s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(stdout)

	close(green.NextProbe(t))
	second := green.NextProbe(t)
	// The switch cannot go on until the second probe is answered: the first is on the screen.
	expectLine(t, lines, `probe 1/2 `+lit(green.Addr())+` passed: HTTP 200 in \S+`)
	close(second)
	expectLine(t, lines, `probe 2/2 `+lit(green.Addr())+` passed: HTTP 200 in \S+`)
	expectLine(t, lines, `switched `+lit(blue.Addr())+` → `+lit(green.Addr()))
	// blue's drain waits for its two requests, which finish there.
	blue.Release()
	expectLine(t, lines, `drained `+lit(blue.Addr())+`: waited for 2 in-flight requests \(\d+\.\d\ds\), 0 cancelled; 1 stream keeps drain.streams`)
	if extra, more := <-lines; more {
		t.Errorf("unexpected output after the drain: %q", extra)
	}
	if err := cmd.Wait(); err != nil || stderr.String() != "" {
		t.Errorf("routiectl switch: %v; stderr: %s", err, stderr.String())
	}
	for i, h := range held {
		if status := testrig.Recv(t, h, "a held request to end"); status != http.StatusOK {
			t.Errorf("request %d in flight on blue across the switch: status %d, want 200", i+1, status)
		}
	}
}

// readLines sends each line of r, without its newline, until r ends.
func readLines(r io.Reader) <-chan string {
	lines := make(chan string, 64) // room to finish even if the test stopped reading
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// expectLine fails the test unless the next line matches pattern.
func expectLine(t *testing.T, lines <-chan string, pattern string) {
	t.Helper()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("output ended; want a line matching %s", pattern)
		}
		if !regexp.MustCompile(`^` + pattern + `$`).MatchString(line) {
			t.Fatalf("line %q, want one matching %s", line, pattern)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for a line matching %s", pattern)
	}
}

func TestSwitchToTheActiveTargetIsANoOpThatExitsZero(t *testing.T) {
	blue := testrig.StartApp(t, "")
	got := runCLI(t, newRig(t, blue).Socket, "switch", blue.Port())
	if want := blue.Addr() + " is already active; nothing to do\n"; got.code != 0 || got.stdout != want || got.stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0 and %q", got.code, got.stdout, got.stderr, want)
	}
}

func TestForcedSwitchSaysTheGateWasSkipped(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	green.SetHealth(http.StatusServiceUnavailable) // only --force switches to it
	r := newRig(t, blue)
	got := runCLI(t, r.Socket, "switch", "--force", green.Port())
	want := regexp.MustCompile(`^switched ` + lit(blue.Addr()) + ` → ` + lit(green.Addr()) + ` \(forced: health gate skipped\)\n` +
		`drained ` + lit(blue.Addr()) + `: waited for 0 in-flight requests \(\d+\.\d\ds\), 0 cancelled\n$`)
	if got.code != 0 || !want.MatchString(got.stdout) || got.stderr != "" {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 0 and stdout matching:\n%s", got.code, got.stdout, got.stderr, want)
	}
	if n := green.Probed(); n != 0 {
		t.Errorf("a forced switch probed %s %d times", green.Addr(), n)
	}
}

func TestRefusedSwitchExitsOneWithTheReasonAndWhatToTry(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	green.SetHealth(http.StatusServiceUnavailable)
	r := newRig(t, blue)
	got := runCLI(t, r.Socket, "switch", green.Port(), "--wait", "200ms")

	probe := "probe 0/2 " + green.Addr() + " failed: HTTP 503 from GET http://" + green.Addr() + "/actuator/health"
	wantErr := "Error: switch to " + green.Addr() + " refused: not healthy after 200ms (0 of 2 passes); last probe failed: HTTP 503 from GET http://" + green.Addr() + "/actuator/health\n" +
		"Try: routiectl health " + green.Port() + " to probe it again; routiectl switch " + green.Port() + " --wait 5m to give it longer\n"
	if got.code != 1 || got.stderr != wantErr {
		t.Errorf("exit %d\nstderr:\n%s\nwant exit 1 and stderr:\n%s", got.code, got.stderr, wantErr)
	}
	// A probe every 10ms for 200ms: how many depends on the machine, what each says does not.
	out := strings.Split(strings.TrimSuffix(got.stdout, "\n"), "\n")
	for i, line := range out {
		if line != probe {
			t.Errorf("stdout line %d: %q, want %q", i+1, line, probe)
		}
	}
	if !strings.HasSuffix(got.stdout, "\n") {
		t.Errorf("stdout %q, want one line per probe", got.stdout)
	}
}

func TestSwitchWhileAnotherIsGatingExitsOne(t *testing.T) {
	blue, green, gray := testrig.StartApp(t, ""), testrig.StartApp(t, ""), testrig.StartApp(t, "")
	gray.SetHealth(http.StatusServiceUnavailable)
	r := newRig(t, blue)
	r.Gating(t, gray)
	got := runCLI(t, r.Socket, "switch", green.Port())
	want := "Error: switch to " + gray.Addr() + " in progress; wait for it to finish (or interrupt the routiectl running it) and try again\nTry: routiectl status\n"
	if got.code != 1 || got.stderr != want || got.stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", got.code, got.stdout, got.stderr, want)
	}
	if n := green.Probed(); n != 0 {
		t.Errorf("the refused switch probed %s %d times", green.Addr(), n)
	}
}

func TestBadTargetIsAUsageError(t *testing.T) {
	got := runCLI(t, newRig(t, testrig.StartApp(t, "")).Socket, "switch", "80a1")
	want := "Error: target \"80a1\": the port is not a number; write a port such as 8081, or host:port such as 127.0.0.1:8081\n" +
		"Try: routiectl switch 8081, or routiectl switch 127.0.0.1:8081\n"
	if got.code != 2 || got.stderr != want {
		t.Errorf("exit %d, stderr %q; want 2 and %q", got.code, got.stderr, want)
	}
}

func TestRollbackWithNothingToRollBackToExitsOne(t *testing.T) {
	got := runCLI(t, newRig(t, testrig.StartApp(t, "")).Socket, "rollback")
	want := "Error: no standby target to roll back to: nothing was switched since routied started with an empty state\n"
	if got.code != 1 || got.stderr != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", got.code, got.stderr, want)
	}
}

func TestInterruptCancelsTheSwitch(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	green.SetHealth(http.StatusServiceUnavailable) // the health gate would run for its whole wait
	r := newRig(t, blue)
	cmd := routiectlCmd(t, r.Socket, "switch", green.Port(), "--wait", "1m")
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

	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.HasPrefix(stderr.String(), "Error: interrupted: ") {
		t.Errorf("exit %d, stderr %q; want 1 and Error: interrupted…", code, stderr.String())
	}
	// routied stops the health gate long before its minute is up.
	r.WaitForLog(t, `msg="switch not done" target=`+green.Port())
	r.WaitForLog(t, "outcome=cancelled")
	if s := r.Switcher.Status(); s.Switching != "" || s.Active.Addr != blue.Addr() {
		t.Errorf("after Ctrl-C: switching %q, active %s; want no switch and %s active", s.Switching, s.Active.Addr, blue.Addr())
	}
}

func TestStatusShowsActiveAndStandbyWithTheirHealth(t *testing.T) {
	blue, green, gray := testrig.StartApp(t, ""), testrig.StartApp(t, ""), testrig.StartApp(t, "")
	r := newRig(t, blue)
	for range 3 {
		r.get(t, "/")
	}
	// The switch returns once blue's drain is done, so its count of served requests is final.
	if _, err := control.NewClient(r.Socket).Switch(t.Context(), control.SwitchRequest{Target: green.Port()}, nil); err != nil {
		t.Fatal(err)
	}
	r.Hold(t, green)
	r.Hold(t, green)
	// blue stops; routied's next probe of it fails.
	blue.Close()
	if res, err := r.Switcher.Probe(t.Context(), blue.Port()); err != nil || res.Passed {
		t.Fatalf("probe of the stopped standby: %+v, %v", res, err)
	}
	gray.SetHealth(http.StatusServiceUnavailable)
	r.Gating(t, gray)

	since := r.Switcher.Status().Since
	got := runCLI(t, r.Socket, "status")
	// The ages depend on when the test runs, and how many connections routie keeps open to
	// the standby on how its pool works.
	want := regexp.MustCompile(`^` + strings.Join([]string{
		`active    ` + lit(green.Addr()) + `  up  since ` + lit(since.Local().Format(time.DateTime)) + ` \(\d+s ago\)`,
		`          2 in flight, 0 streams, 2 connections, 0 served`,
		`          last probe \d+s ago: passed: HTTP 200 in \S+`,
		`standby   ` + lit(blue.Addr()) + `  down`,
		`          0 in flight, 0 streams, \d+ connections, 3 served`,
		`          last probe \d+s ago: failed: connection refused: nothing is listening on ` + lit(blue.Addr()),
		`switching ` + lit(gray.Addr()) + `: health gate running`,
		`routied   dev \(pid \d+\)`,
	}, "\n") + "\n$")
	if got.code != 0 || !want.MatchString(got.stdout) {
		t.Errorf("exit %d, stdout:\n%s\nwant it to match:\n%s", got.code, got.stdout, want)
	}
}

func TestStatusJSONPrintsTheDaemonsAnswerAsIs(t *testing.T) {
	r := newRig(t, testrig.StartApp(t, ""))
	raw, err := control.NewClient(r.Socket).StatusJSON(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := runCLI(t, r.Socket, "status", "--json")
	if got.code != 0 || got.stdout != string(raw) {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", got.code, got.stdout, raw)
	}
}

func TestHealthExitsOneWhenTheProbeFails(t *testing.T) {
	blue := testrig.StartApp(t, "")
	dead := testrig.DeadPort(t)
	r := newRig(t, blue)

	ok := runCLI(t, r.Socket, "health", blue.Port())
	if want := regexp.MustCompile(`^` + lit(blue.Addr()) + ` passed: HTTP 200 in \S+\n$`); ok.code != 0 || !want.MatchString(ok.stdout) || ok.stderr != "" {
		t.Errorf("passing probe: exit %d, stdout %q, stderr %q; want 0 and stdout matching %s", ok.code, ok.stdout, ok.stderr, want)
	}
	bad := runCLI(t, r.Socket, "health", dead)
	if want := dead + " failed: connection refused: nothing is listening on " + dead + "\n"; bad.code != 1 || bad.stdout != want || bad.stderr != "" {
		t.Errorf("failing probe: exit %d, stdout %q, stderr %q; want 1 and %q", bad.code, bad.stdout, bad.stderr, want)
	}
}
