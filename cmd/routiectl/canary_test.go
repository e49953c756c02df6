package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/routie/routie/internal/testrig"
)

// match fails the test unless the run exited 0 with nothing on stderr and stdout matching
// pattern whole.
func match(t *testing.T, what string, got result, pattern string) {
	t.Helper()
	if got.code != 0 || got.stderr != "" || !regexp.MustCompile(`^`+pattern+`$`).MatchString(got.stdout) {
		t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 0 and stdout matching:\n%s", what, got.code, got.stdout, got.stderr, pattern)
	}
}

func TestCanaryWeightPromoteAndAbortPrintEachStep(t *testing.T) {
	blue, green := testrig.StartApp(t, ""), testrig.StartApp(t, "")
	r := newRig(t, blue)
	b, g := lit(blue.Addr()), lit(green.Addr())
	probe := func(n, of int, addr string) string {
		return `probe ` + string(rune('0'+n)) + `/` + string(rune('0'+of)) + ` ` + lit(addr) + ` passed: HTTP 200 in \S+\n`
	}

	match(t, "canary", runCLI(t, r.Socket, "canary", green.Port(), "--weight", "5"),
		probe(1, 2, green.Addr())+probe(2, 2, green.Addr())+
			`canary `+g+` takes 5% of the clients; `+b+` keeps the rest\n`)
	match(t, "canary --weight", runCLI(t, r.Socket, "canary", "--weight", "25%"),
		`canary `+g+` now takes 25% of the clients; `+b+` keeps the rest\n`)
	match(t, "canary --weight again", runCLI(t, r.Socket, "canary", "--weight", "25"),
		`canary `+g+` takes 25% of the clients already; nothing to do\n`)
	r.get(t, "/")
	st := runCLI(t, r.Socket, "status")
	// The rig runs no health monitor: the active target was never probed.
	match(t, "status", st, `active    `+b+`  unknown  since [^\n]+\n`+
		`          \d+ in flight, \d+ streams, \d+ connections, \d+ served\n`+
		`canary    `+g+`  up  25% of the clients\n`+
		`          \d+ in flight, \d+ streams, \d+ connections, \d+ served\n`+
		`          last probe [^\n]+\n`+
		`standby   none: nothing to roll back to yet\n`+
		`routied   dev \(pid \d+\)\n`)

	match(t, "promote", runCLI(t, r.Socket, "promote"),
		probe(1, 1, green.Addr())+
			`promoted `+b+` → `+g+`\n`+
			`drained `+b+`: waited for 0 in-flight requests \(\d+\.\d\ds\), 0 cancelled\n`)
	if s := r.Switcher.Status(); s.Active.Addr != green.Addr() || s.Canary != nil {
		t.Fatalf("after promote: active %s, canary %+v", s.Active.Addr, s.Canary)
	}

	match(t, "canary of the old version, forced", runCLI(t, r.Socket, "canary", blue.Port(), "--weight", "10", "--force"),
		`canary `+b+` takes 10% of the clients; `+g+` keeps the rest \(forced: health gate skipped\)\n`)
	match(t, "abort", runCLI(t, r.Socket, "abort"),
		`aborted canary `+b+`: every request goes to `+g+`\n`+
			`drained `+b+`: waited for 0 in-flight requests \(\d+\.\d\ds\), 0 cancelled\n`)
	if s := r.Switcher.Status(); s.Active.Addr != green.Addr() || s.Canary != nil {
		t.Fatalf("after abort: active %s, canary %+v", s.Active.Addr, s.Canary)
	}
}

func TestCanaryRefusalsExitOneWithTheWayOut(t *testing.T) {
	blue, green, gray := testrig.StartApp(t, ""), testrig.StartApp(t, ""), testrig.StartApp(t, "")
	gray.SetHealth(http.StatusServiceUnavailable)
	r := newRig(t, blue)
	noCanary := "Error: no canary is running; start one with routiectl canary TARGET --weight 5\nTry: routiectl canary TARGET --weight 5 starts one\n"
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"promote without a canary", []string{"promote"}, noCanary},
		{"abort without a canary", []string{"abort"}, noCanary},
		{"weight without a canary", []string{"canary", "--weight", "20"}, noCanary},
		{"canary of the active target", []string{"canary", blue.Port(), "--weight", "5"},
			"Error: " + blue.Addr() + " is the active target already; a canary runs the new version on another port, such as the standby's\nTry: routiectl status\n"},
		{"canary of an unhealthy target", []string{"canary", gray.Port(), "--weight", "5", "--wait", "100ms"},
			"Error: canary of " + gray.Addr() + " refused: not healthy after 100ms (0 of 2 passes); last probe failed: HTTP 503 from GET http://" + gray.Addr() + "/actuator/health\n" +
				"Try: routiectl health " + gray.Port() + " to probe it again; routiectl canary " + gray.Port() + " --weight 5 --wait 5m to give it longer\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runCLI(t, r.Socket, tc.args...)
			if got.code != 1 || got.stderr != tc.stderr {
				t.Errorf("exit %d\nstderr:\n%s\nwant exit 1 and stderr:\n%s", got.code, got.stderr, tc.stderr)
			}
		})
	}

	match(t, "canary", runCLI(t, r.Socket, "canary", green.Port(), "--weight", "5"), `(?s).*`)
	running := "Error: %s refused: a canary of " + green.Addr() + " takes 5% of the clients; end it first with routiectl promote (keep it) or routiectl abort (drop it)\n"
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"switch", []string{"switch", gray.Port()}, strings.Replace(running, "%s", "switch", 1) + "Try: routiectl promote, or routiectl abort\n"},
		{"rollback", []string{"rollback"}, strings.Replace(running, "%s", "rollback", 1) + "Try: routiectl abort drops the canary; a rollback is not needed while it runs\n"},
		{"second canary", []string{"canary", gray.Port(), "--weight", "5"},
			strings.Replace(running, "%s", "canary", 1) + "Try: routiectl status; routiectl canary --weight N changes the running canary's share\n"},
	} {
		t.Run(tc.name+" while a canary runs", func(t *testing.T) {
			got := runCLI(t, r.Socket, tc.args...)
			if got.code != 1 || got.stderr != tc.stderr {
				t.Errorf("exit %d\nstderr:\n%s\nwant exit 1 and stderr:\n%s", got.code, got.stderr, tc.stderr)
			}
		})
	}
}

func TestCanaryUsageErrorsExitTwo(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no weight, no target", []string{"canary"},
			"Error: canary needs --weight, and a TARGET to start one\nTry: routiectl canary 8081 --weight 5, or routiectl canary --weight 25 for the running canary\n"},
		{"no weight", []string{"canary", "8081"},
			"Error: canary needs --weight, the canary's share of the clients in percent\nTry: routiectl canary 8081 --weight 5\n"},
		{"weight 100", []string{"canary", "8081", "--weight", "100"},
			"Error: invalid value \"100\" for --weight: out of range; a canary takes 1 to 99 percent of the clients (promote gives it all of them)\nTry: routiectl canary -h\n"},
		{"weight as a fraction", []string{"canary", "8081", "--weight", "0.05"},
			"Error: invalid value \"0.05\" for --weight: not a whole percentage; write a number from 1 to 99, such as 5\nTry: routiectl canary -h\n"},
		{"two targets", []string{"canary", "8081", "8082", "--weight", "5"},
			"Error: canary takes one TARGET, got 2: [\"8081\" \"8082\"]\nTry: routiectl canary 8081 --weight 5\n"},
		{"force on a weight change", []string{"canary", "--weight", "5", "--force"},
			"Error: --wait and --force are for starting a canary: changing its weight has no health gate\nTry: routiectl canary --weight 5\n"},
		{"promote with an argument", []string{"promote", "8081"},
			"Error: promote takes no arguments, got [\"8081\"]\nTry: routiectl promote, which makes the running canary active\n"},
		{"abort with an argument", []string{"abort", "8081"},
			"Error: abort takes no arguments, got [\"8081\"]\nTry: routiectl abort, which drops the running canary\n"},
		{"deploy with a bad step list", []string{"deploy", "--canary", "5,x"},
			"Error: invalid value \"5,x\" for --canary: \"x\" is not a whole percentage; write rising percentages from 1 to 99, such as 5,25,50\nTry: routiectl deploy -h\n"},
		{"deploy with falling steps", []string{"deploy", "--canary", "50,25"},
			"Error: invalid value \"50,25\" for --canary: 25 after 50: the steps must rise; write them such as 5,25,50\nTry: routiectl deploy -h\n"},
		{"deploy --step without --canary", []string{"deploy", "--step", "2m"},
			"Error: --step is the time of each --canary step\nTry: routiectl deploy --canary 5,25,50 --step 2m\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := runCLI(t, testrig.SocketPath(t), tc.args...)
			if got.code != 2 || got.stderr != tc.stderr || got.stdout != "" {
				t.Errorf("routiectl %q: exit %d\nstderr:\n%s\nwant exit 2 and stderr:\n%s", tc.args, got.code, got.stderr, tc.stderr)
			}
		})
	}
}

func TestCanaryHelpTeachesWithAnExample(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"canary TARGET --weight N", "promote", "abort", "routiectl canary 8081 --weight 5"}},
		{[]string{"canary", "-h"}, []string{"--weight PERCENT", "routiectl canary 8081 --weight 5", "routiectl canary --weight 25", "routiectl abort && systemctl stop app@8081"}},
		{[]string{"promote", "-h"}, []string{"--force", "routiectl promote && systemctl stop app@8080"}},
		{[]string{"abort", "-h"}, []string{"drain.streams", "routiectl abort && systemctl stop app@8081"}},
		{[]string{"deploy", "-h"}, []string{"--canary 5,25,50", "--step DURATION", "routiectl deploy --canary 5,25,50 --step 2m"}},
	} {
		got := runCLI(t, testrig.SocketPath(t), tc.args...)
		if got.code != 0 || got.stderr != "" {
			t.Errorf("routiectl %q: exit %d, stderr %q", tc.args, got.code, got.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(got.stdout, w) {
				t.Errorf("routiectl %q: output lacks %q:\n%s", tc.args, w, got.stdout)
			}
		}
	}
}
