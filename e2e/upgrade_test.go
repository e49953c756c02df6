package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// upgradable is a routied started from its own copy of the binary, with a PID file, so a test
// can upgrade it with SIGHUP and replace the binary on disk as an operator would.
type upgradable struct {
	*daemon
	binary  string
	pidFile string
}

func startUpgradable(t *testing.T, initial int, env ...string) *upgradable {
	t.Helper()
	d := &daemon{dir: shortDir(t), httpPort: freePort(t), httpsPort: freePort(t)}
	d.config = writeConfig(t, d.dir, d.httpPort, d.httpsPort, initial, "")
	d.socket = filepath.Join(d.dir, "c.sock")
	u := &upgradable{daemon: d, binary: filepath.Join(d.dir, "routied"), pidFile: filepath.Join(d.dir, "routied.pid")}
	copyFile(t, filepath.Join(bin, "routied"), u.binary)
	p := &process{cmd: osexec.Command(u.binary, "-config", d.config, "-pidfile", u.pidFile), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.run(t, "routied")
	d.process = p
	d.waitLog(t, "routied ready")
	return u
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil { // as an install does: the running binary is untouched
		t.Fatal(err)
	}
}

// pid returns the PID in the PID file: the routied systemd would consider the main process.
func (u *upgradable) pid(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile(u.pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("PID file %s: %q", u.pidFile, data)
	}
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// How an operator asks for an upgrade.
const (
	bySignal    = "SIGHUP"            // kill -HUP, with only the log to say how it went
	byRoutiectl = "routiectl upgrade" // what systemd's ExecReload runs
)

// upgrade asks the current routied to upgrade (by SIGHUP or routiectl upgrade) and waits
// until a new one has taken over and the old one has exited.
func (u *upgradable) upgrade(t *testing.T, how string) {
	t.Helper()
	old := u.pid(t)
	switch how {
	case bySignal:
		if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a new routied to write the PID file", func() bool { return u.pid(t) != old })
	case byRoutiectl:
		code, out, errOut := u.ctl(t, "upgrade")
		// It returns once the new process serves, which wrote the PID file before that.
		if code != 0 || u.pid(t) == old {
			t.Fatalf("routiectl upgrade: exit %d, PID file %d (was %d)\n%s%s", code, u.pid(t), old, out, errOut)
		}
		if want := fmt.Sprintf("routied pid %d serves; the old one (pid %d)", u.pid(t), old); !strings.Contains(out, want) {
			t.Errorf("routiectl upgrade printed %q; want it to say %q", out, want)
		}
	}
	u.waitExit(t, old)
}

// waitExit waits until the routied with pid has exited.
func (u *upgradable) waitExit(t *testing.T, pid int) {
	t.Helper()
	// The first routied is our child, reaped by exec's Wait, which then waits for the
	// stdout its successors inherited: "gone from the process table" is the exit.
	eventually(t, fmt.Sprintf("the old routied (pid %d) to exit", pid), func() bool { return !alive(pid) })
}

// killAll stops whichever routied serves now.
func (u *upgradable) killAll(t *testing.T) {
	if data, err := os.ReadFile(u.pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

type loadReport struct {
	Requests int64            `json:"requests"`
	Failed   int64            `json:"failed"`
	Non2xx   int64            `json:"non_2xx"`
	Opened   int64            `json:"connections_opened"`
	Errors   map[string]int64 `json:"errors"`
	OK       bool             `json:"ok"`
}

func TestUpgradesUnderLoadDropNothing(t *testing.T) {
	blue := demoApp(t, "blue")
	u := startUpgradable(t, blue)
	t.Cleanup(func() { u.killAll(t) })

	// Keep-alive load from a separate process, bounded in time; it is stopped with SIGINT
	// once the upgrades are done.
	load := osexec.Command(filepath.Join(bin, "load"), "-url", u.url("/"), "-insecure", "-c", "32", "-d", "60s", "-json")
	var out, errOut bytes.Buffer
	load.Stdout, load.Stderr = &out, &errOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { load.Process.Kill() })
	eventually(t, "the load to reach routied", func() bool { return u.status(t).Active.Served > 100 })

	var slow chan int
	for i := range 5 {
		if i == 2 {
			// A 3 s request that starts before an upgrade must finish on the old routied.
			slow = make(chan int, 1)
			go func() {
				resp, err := httpsClient().Get(u.url("/slow?d=3s"))
				if err != nil {
					slow <- -1
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				slow <- resp.StatusCode
			}()
			eventually(t, "the slow request to be in flight", func() bool { return u.status(t).Active.InFlight >= 1 })
		}
		// Both ways an operator asks for an upgrade, under the same load.
		how := bySignal
		if i%2 == 1 {
			how = byRoutiectl
		}
		u.upgrade(t, how)
		// The control socket moved to the new routied too, even while the old one drains
		// (the 3s request above keeps it draining).
		if code, _, errText := u.ctl(t, "status"); code != 0 {
			t.Fatalf("routiectl status after upgrade %d: exit %d: %s", i+1, code, errText)
		}
		if s := u.status(t); s.PID != u.pid(t) {
			t.Fatalf("routiectl status after upgrade %d answered by pid %d, want the new routied %d", i+1, s.PID, u.pid(t))
		}
	}
	if got := <-slow; got != http.StatusOK {
		t.Errorf("the 3s request started before an upgrade got %d, want 200", got)
	}

	load.Process.Signal(syscall.SIGINT)
	load.Wait()
	var rep loadReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("load report: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if rep.Failed != 0 || rep.Non2xx != 0 || rep.Requests == 0 {
		t.Fatalf("across 5 upgrades: %d requests, %d failed, %d non-2xx (errors: %v)", rep.Requests, rep.Failed, rep.Non2xx, rep.Errors)
	}
	t.Logf("5 upgrades under 32 keep-alive connections: %d requests, 0 failed; %d connections opened", rep.Requests, rep.Opened)
}

func TestBrokenNewBinaryLeavesTheOldOneServing(t *testing.T) {
	blue := demoApp(t, "blue")
	u := startUpgradable(t, blue)
	t.Cleanup(func() { u.killAll(t) })
	old := u.pid(t)

	broken := filepath.Join(u.dir, "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'routied: cannot start' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, broken, u.binary)
	code, out, errOut := u.ctl(t, "upgrade")
	if code != 1 || !strings.Contains(errOut, "did not take over") || !strings.Contains(errOut, "exit") || !strings.Contains(errOut, fmt.Sprintf("this one (pid %d) keeps serving", old)) {
		t.Errorf("routiectl upgrade to a broken binary: exit %d; want 1 and why, naming the pid that keeps serving\n%s%s", code, out, errOut)
	}
	t.Logf("routiectl upgrade to a broken binary: exit %d: %s", code, errOut)
	// The broken binary's own words reach the same log (its stderr is routied's).
	u.waitLog(t, "routied: cannot start")
	u.waitLog(t, "upgrade failed")
	// The same by signal: only the log says so.
	syscall.Kill(old, syscall.SIGHUP)
	eventually(t, "the second failure in the log", func() bool { return strings.Count(u.log(), "upgrade failed") == 2 })
	if pid := u.pid(t); pid != old {
		t.Fatalf("PID file says %d after a failed upgrade, want the old %d", pid, old)
	}
	if app := u.activeApp(t); app != "blue" {
		t.Fatalf("after a failed upgrade traffic goes to %q", app)
	}

	// A fixed binary upgrades fine afterwards.
	copyFile(t, filepath.Join(bin, "routied"), u.binary)
	u.upgrade(t, byRoutiectl)
	if app := u.activeApp(t); app != "blue" {
		t.Fatalf("after the good upgrade traffic goes to %q", app)
	}
}

func TestSystemdIsNotifiedWhenReadyAndWhenStopping(t *testing.T) {
	blue := demoApp(t, "blue")
	sockPath := filepath.Join(shortDir(t), "notify")
	notifySock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notifySock.Close()
	next := func(what string) string {
		t.Helper()
		buf := make([]byte, 4096)
		notifySock.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, _, err := notifySock.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("waiting for %s on the notify socket: %v", what, err)
		}
		return string(buf[:n])
	}

	u := startUpgradable(t, blue, "NOTIFY_SOCKET="+sockPath)
	t.Cleanup(func() { u.killAll(t) })
	first := u.pid(t)
	msg := next("READY=1")
	if !strings.Contains(msg, "READY=1") || !strings.Contains(msg, fmt.Sprintf("MAINPID=%d", first)) {
		t.Fatalf("first notification %q, want READY=1 with MAINPID=%d", msg, first)
	}
	// READY means serving: the HTTPS listener answers at once.
	if app := u.activeApp(t); app != "blue" {
		t.Fatalf("after READY=1 traffic goes to %q", app)
	}

	// An upgrade: the new process announces itself; the old one does not say STOPPING.
	u.upgrade(t, bySignal)
	second := u.pid(t)
	msg = next("READY=1 from the upgraded routied")
	if !strings.Contains(msg, fmt.Sprintf("MAINPID=%d", second)) || !strings.Contains(msg, "READY=1") {
		t.Fatalf("notification after upgrade %q, want MAINPID=%d and READY=1", msg, second)
	}

	syscall.Kill(second, syscall.SIGTERM)
	if msg = next("STOPPING=1"); !strings.Contains(msg, "STOPPING=1") {
		t.Fatalf("on SIGTERM got %q, want STOPPING=1", msg)
	}
	eventually(t, "routied to exit after SIGTERM", func() bool { return !alive(second) })
}

func TestNewListenAddressIsAppliedByAnUpgrade(t *testing.T) {
	blue := demoApp(t, "blue")
	u := startUpgradable(t, blue)
	t.Cleanup(func() { u.killAll(t) })

	newPort := freePort(t)
	cfg, _ := os.ReadFile(u.config)
	edited := strings.Replace(string(cfg), fmt.Sprintf("http = \"127.0.0.1:%d\"", u.httpPort), fmt.Sprintf("http = \"127.0.0.1:%d\"", newPort), 1)
	os.WriteFile(u.config+".new", []byte(edited), 0o644)
	os.Rename(u.config+".new", u.config)
	u.waitLog(t, "systemctl reload routied")

	u.upgrade(t, bySignal)
	resp, err := httpsClient().Get(fmt.Sprintf("http://127.0.0.1:%d/x", newPort))
	if err != nil {
		t.Fatalf("the new listen.http after the upgrade: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("the new listen.http answered %d, want the 308 to https", resp.StatusCode)
	}
	if app := u.activeApp(t); app != "blue" {
		t.Fatalf("HTTPS after the upgrade: %q", app)
	}
}

func TestUpgradeWhileThePreviousRoutiedHoldsStreamsSaysToWait(t *testing.T) {
	blue := demoApp(t, "blue")
	u := startUpgradable(t, blue)
	t.Cleanup(func() { u.killAll(t) })
	// An event stream keeps the old process for up to drain.timeout after an upgrade: 30s
	// here, longer than this test needs (the file is watched).
	cfg, _ := os.ReadFile(u.config)
	os.WriteFile(u.config+".new", []byte(strings.Replace(string(cfg), `timeout = "10s"`, `timeout = "30s"`, 1)), 0o644)
	os.Rename(u.config+".new", u.config)
	u.waitLog(t, "config applied")

	// An event stream through the first routied, which it keeps after the upgrade.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u.url("/events?n=300&every=100ms"), nil)
	client := httpsClient()
	stream, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	event := make([]byte, 64)
	if n, err := stream.Body.Read(event); err != nil || !strings.Contains(string(event[:n]), "data: blue") {
		t.Fatalf("first event: %q, %v", event[:n], err)
	}
	first := u.pid(t)
	if code, out, errOut := u.ctl(t, "upgrade"); code != 0 {
		t.Fatalf("routiectl upgrade: exit %d\n%s%s", code, out, errOut)
	}
	if !alive(first) {
		t.Fatalf("the first routied (pid %d) exited with its stream still open", first)
	}

	// The next routiectl command reaches the new routied, not the one still holding the
	// stream, and the new one cannot hand over until the old one has gone.
	if s := u.status(t); s.PID != u.pid(t) {
		t.Errorf("routiectl status after the upgrade answered by pid %d, want the new routied %d", s.PID, u.pid(t))
	}
	code, out, errOut := u.ctl(t, "upgrade")
	if code != 1 || !strings.Contains(errOut, "still finishing its WebSockets and event streams") || !strings.Contains(errOut, "try again once it has exited") {
		t.Fatalf("an upgrade while pid %d still holds a stream: exit %d; want 1 and to wait for it\n%s%s", first, code, out, errOut)
	}
	t.Logf("routiectl upgrade while the previous routied holds a stream: %s", errOut)

	// Once the stream ends, the first routied exits and upgrades work again.
	stream.Body.Close()
	client.CloseIdleConnections()
	u.waitExit(t, first)
	u.upgrade(t, byRoutiectl)
	if app := u.activeApp(t); app != "blue" {
		t.Fatalf("after the upgrades traffic goes to %q", app)
	}
}
