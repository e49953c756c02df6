package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/routie/routie/internal/testrig"
)

// routiectl is the binary under test, built once by TestMain with a known version.
var routiectl string

const testVersion = "1.2.3-test"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "routiectl")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	routiectl = filepath.Join(dir, "routiectl")
	build := exec.Command("go", "build", "-o", routiectl,
		"-ldflags", "-X github.com/routie/routie/control.Version="+testVersion, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building routiectl:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is how a routiectl run ended.
type result struct {
	stdout, stderr string
	code           int
}

// routiectlCmd returns routiectl with args, talking to socket unless args say otherwise.
// ROUTIE_SOCKET is always set so that no test reaches a real routied by accident.
func routiectlCmd(t *testing.T, socket string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), routiectl, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROUTIE_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ROUTIE_SOCKET="+socket)
	return cmd
}

func runCLI(t *testing.T, socket string, args ...string) result {
	t.Helper()
	cmd := routiectlCmd(t, socket, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running routiectl %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

func TestUsageErrorsExitTwoWithErrorAndTry(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no subcommand", nil,
			"Error: missing subcommand\nTry: routiectl status, or routiectl --help for every subcommand\n"},
		{"unknown subcommand", []string{"swtich", "8081"},
			"Error: unknown subcommand \"swtich\"\nTry: routiectl --help\n"},
		{"unknown global flag", []string{"--sock", "/tmp/x", "status"},
			"Error: unknown flag -sock\nTry: routiectl --help\n"},
		{"switch without a target", []string{"switch"},
			"Error: switch needs a TARGET, a port such as 8081\nTry: routiectl switch 8081\n"},
		{"switch with two targets", []string{"switch", "8081", "8082"},
			"Error: switch takes one TARGET, got 2: [\"8081\" \"8082\"]\nTry: routiectl switch 8081\n"},
		{"switch with an unknown flag", []string{"switch", "--frce", "8081"},
			"Error: unknown flag -frce\nTry: routiectl switch -h\n"},
		{"wait without a unit", []string{"switch", "8081", "--wait", "30"},
			"Error: invalid value \"30\" for --wait: not a duration; write a number with a unit, such as 30s or 2m\nTry: routiectl switch -h\n"},
		{"wait without a value", []string{"switch", "8081", "--wait"},
			"Error: --wait needs a value\nTry: routiectl switch -h\n"},
		{"rollback with an argument", []string{"rollback", "8080"},
			"Error: rollback takes no arguments, got [\"8080\"]\nTry: routiectl rollback, or routiectl switch TARGET to choose the target\n"},
		{"status with an argument", []string{"status", "8081"},
			"Error: status takes no arguments, got [\"8081\"]\nTry: routiectl status, or routiectl health TARGET for one target\n"},
		{"health without a target", []string{"health"},
			"Error: health needs a TARGET, a port such as 8081\nTry: routiectl health 8081\n"},
		{"upgrade with an argument", []string{"upgrade", "/usr/local/bin/routied"},
			"Error: upgrade takes no arguments, got [\"/usr/local/bin/routied\"]\nTry: routiectl upgrade\n"},
		{"version with an unknown flag", []string{"version", "--json"},
			"Error: unknown flag -json\nTry: routiectl version -h\n"},
		{"empty socket", []string{"status", "--socket", ""},
			"Error: --socket is empty\nTry: routiectl --socket /run/routie/control.sock status\n"},
	}
	missing := testrig.SocketPath(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := runCLI(t, missing, tc.args...)
			if got.code != 2 || got.stderr != tc.stderr || got.stdout != "" {
				t.Errorf("routiectl %q: exit %d\nstderr:\n%s\nstdout:\n%s\nwant exit 2 and stderr:\n%s",
					tc.args, got.code, got.stderr, got.stdout, tc.stderr)
			}
		})
	}
}

func TestUnreachableDaemonExitsOneNamingTheSocket(t *testing.T) {
	missing := testrig.SocketPath(t)
	want := "Error: cannot reach routied at " + missing + ": no such file (is routied running? systemctl status routied; or pass --socket / set ROUTIE_SOCKET)\n"
	for _, args := range [][]string{
		{"switch", "8081"},
		{"rollback"},
		{"health", "8081"},
		{"status"}, // retries for a second, in case routied is starting
		{"status", "--json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			got := runCLI(t, missing, args...)
			if got.code != 1 || got.stderr != want || got.stdout != "" {
				t.Errorf("exit %d\nstderr:\n%s\nstdout:\n%s\nwant exit 1 and stderr:\n%s", got.code, got.stderr, got.stdout, want)
			}
		})
	}
}

func TestSocketComesFromTheFlagElseROUTIE_SOCKET(t *testing.T) {
	fromEnv, fromFlag := testrig.SocketPath(t), testrig.SocketPath(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"environment", []string{"switch", "8081"}, fromEnv},
		{"flag before the subcommand", []string{"--socket", fromFlag, "switch", "8081"}, fromFlag},
		{"flag after the subcommand", []string{"switch", "8081", "--socket", fromFlag}, fromFlag},
	}
	for _, tc := range cases {
		got := runCLI(t, fromEnv, tc.args...)
		if !strings.Contains(got.stderr, "cannot reach routied at "+tc.want+":") {
			t.Errorf("%s: stderr %q does not name %s", tc.name, got.stderr, tc.want)
		}
	}
}

func TestDefaultSocketIsRunRoutieControlSock(t *testing.T) {
	if _, err := os.Lstat(defaultSocket); err == nil {
		t.Skip(defaultSocket + " exists on this machine; not talking to it")
	}
	cmd := exec.CommandContext(t.Context(), routiectl, "switch", "8081")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	if !strings.Contains(stderr.String(), "cannot reach routied at /run/routie/control.sock:") {
		t.Errorf("stderr %q does not name the default socket", stderr.String())
	}
}

func TestHelpTeachesWithAnExample(t *testing.T) {
	const deploy = "routiectl switch 8081 && systemctl stop app@8080"
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"Usage: routiectl [--socket PATH] SUBCOMMAND", "switch TARGET", deploy}},
		{[]string{"-h"}, []string{deploy}},
		{[]string{"help"}, []string{deploy}},
		{[]string{"help", "switch"}, []string{"Usage: routiectl switch TARGET", deploy}},
		{[]string{"switch", "-h"}, []string{"--wait DURATION", "--force", deploy, "routiectl switch 8081 --wait 5m"}},
		{[]string{"switch", "8081", "--help"}, []string{"Usage: routiectl switch TARGET"}},
		{[]string{"rollback", "-h"}, []string{"--force", "Example", "routiectl rollback && systemctl stop app@8081"}},
		{[]string{"status", "-h"}, []string{"--json", "Example", "routiectl status --json | jq -r .active.addr"}},
		{[]string{"health", "-h"}, []string{"Example", "until routiectl health 8081; do sleep 1; done"}},
		{[]string{"version", "-h"}, []string{"Example", "routiectl version"}},
		{[]string{"upgrade", "-h"}, []string{"systemctl reload routied", "routied -check -config /etc/routie/routie.toml && routiectl upgrade"}},
	}
	missing := testrig.SocketPath(t)
	for _, tc := range cases {
		got := runCLI(t, missing, tc.args...)
		if got.code != 0 || got.stderr != "" {
			t.Errorf("routiectl %q: exit %d, stderr %q; want exit 0 and no stderr", tc.args, got.code, got.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(got.stdout, w) {
				t.Errorf("routiectl %q: output lacks %q:\n%s", tc.args, w, got.stdout)
			}
		}
	}
}

func TestVersionWithoutDaemonPrintsRoutiectlsAndExitsOne(t *testing.T) {
	missing := testrig.SocketPath(t)
	got := runCLI(t, missing, "version")
	if want := "routiectl " + testVersion + " (" + runtime.Version() + ")\n"; got.stdout != want {
		t.Errorf("stdout %q, want %q", got.stdout, want)
	}
	if got.code != 1 || !strings.Contains(got.stderr, "cannot reach routied at "+missing) {
		t.Errorf("exit %d, stderr %q; want 1 and the socket named", got.code, got.stderr)
	}
}

func TestVersionPrintsBothVersions(t *testing.T) {
	r := newRig(t, testrig.StartApp(t, ""))
	got := runCLI(t, r.Socket, "version")
	// The daemon here is this test binary, built without -X: its version is "dev".
	want := fmt.Sprintf("routiectl %s (%s)\nroutied   dev (%s)\n", testVersion, runtime.Version(), runtime.Version())
	if got.code != 0 || got.stdout != want {
		t.Errorf("exit %d, stdout:\n%s\nwant exit 0 and:\n%s", got.code, got.stdout, want)
	}
}
