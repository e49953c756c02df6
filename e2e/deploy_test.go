package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// deployRig is routied in front of blue on one port, with deploy.start and deploy.stop
// commands that run the demo app binary on the other port, as systemctl would run app@PORT.
type deployRig struct {
	*daemon
	blue, green int
	apps        string // where the commands keep each app's pid and log
}

// startDeployRig starts blue (the version serving now) and routied. greenFlags are the demo
// app's flags for the version a deploy starts (e.g. "-fail-rate 0.3").
func startDeployRig(t *testing.T, greenFlags, deployExtra string, blueFlags ...string) *deployRig {
	t.Helper()
	r := &deployRig{blue: freePort(t), green: freePort(t), apps: shortDir(t)}
	app := filepath.Join(bin, "app")
	// blue runs as deploy.start would have started it: its pid where deploy.stop looks.
	blue := start(t, "app", append([]string{"-listen", "127.0.0.1:" + strconv.Itoa(r.blue), "-name", "blue"}, blueFlags...)...)
	os.WriteFile(filepath.Join(r.apps, fmt.Sprintf("app-%d.pid", r.blue)), []byte(strconv.Itoa(blue.cmd.Process.Pid)), 0o644)
	waitHealthy(t, r.blue)
	t.Cleanup(func() { r.killApps() })

	startCmd := fmt.Sprintf(`%s -listen 127.0.0.1:{port} -name green %s > %s/app-{port}.log 2>&1 & echo $! > %s/app-{port}.pid`, app, greenFlags, r.apps, r.apps)
	stopCmd := fmt.Sprintf(`kill $(cat %s/app-{port}.pid)`, r.apps)
	d := &daemon{dir: shortDir(t), httpPort: freePort(t), httpsPort: freePort(t)}
	d.config = testConfig{
		HTTPPort: d.httpPort, HTTPSPort: d.httpsPort, Initial: r.blue,
		Upstream: fmt.Sprintf("ports = [%d, %d]", r.blue, r.green),
		Extra:    fmt.Sprintf("\n[deploy]\nstart = %q\nstop = %q\nstart_timeout = \"10s\"\nmonitor = \"3s\"\nsustain = \"500ms\"\nmin_requests = 20\n%s", startCmd, stopCmd, deployExtra),
	}.write(t, d.dir)
	d.socket = filepath.Join(d.dir, "c.sock")
	d.restart(t)
	r.daemon = d
	return r
}

func waitHealthy(t *testing.T, port int) {
	t.Helper()
	eventually(t, fmt.Sprintf("the app on %d to answer", port), func() bool {
		resp, err := httpsClient().Get(fmt.Sprintf("http://127.0.0.1:%d/actuator/health", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// killApps stops the apps the deploy commands started.
func (r *deployRig) killApps() {
	pids, _ := filepath.Glob(filepath.Join(r.apps, "app-*.pid"))
	for _, f := range pids {
		data, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// runLoad starts the load generator as its own process; stop ends it and returns its report.
func runLoad(t *testing.T, url string, conns int) (stop func() loadReport) {
	t.Helper()
	load := osexec.Command(filepath.Join(bin, "load"), "-url", url, "-insecure", "-c", strconv.Itoa(conns), "-d", "90s", "-json")
	var out, errOut bytes.Buffer
	load.Stdout, load.Stderr = &out, &errOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { load.Process.Kill() })
	return func() loadReport {
		load.Process.Signal(syscall.SIGINT)
		load.Wait()
		var rep loadReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("load report: %v\n%s\n%s", err, out.String(), errOut.String())
		}
		return rep
	}
}

func TestDeployUnderLoadStartsSwitchesWatchesAndStopsTheOld(t *testing.T) {
	r := startDeployRig(t, "", "")
	stop := runLoad(t, r.url("/"), 32)
	eventually(t, "load on blue", func() bool { return r.status(t).Active.Served > 200 })

	code, out, errOut := r.ctl(t, "deploy")
	rep := stop()
	if code != 0 {
		t.Fatalf("routiectl deploy: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"start", "probe", "switched", "monitor", "stop", "succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	if rep.Failed != 0 || rep.Non2xx != 0 || rep.Requests == 0 {
		t.Fatalf("during the deploy: %d requests, %d failed, %d non-2xx (%v)", rep.Requests, rep.Failed, rep.Non2xx, rep.Errors)
	}
	if app := r.activeApp(t); app != "green" {
		t.Fatalf("after the deploy traffic goes to %q, want green", app)
	}
	eventually(t, "blue to be stopped by deploy.stop", func() bool {
		resp, err := httpsClient().Get(fmt.Sprintf("http://127.0.0.1:%d/actuator/health", r.blue))
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	code, out, _ = r.ctl(t, "history")
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, strconv.Itoa(r.green)) {
		t.Fatalf("history: exit %d\n%s", code, out)
	}
	code, _, errOut = r.ctl(t, "rollback")
	if code != 1 || !strings.Contains(errOut, "rollback --start") {
		t.Fatalf("rollback to the stopped standby: exit %d\n%s", code, errOut)
	}
	t.Logf("deploy under 32 keep-alive connections: %d requests, 0 failed", rep.Requests)
}

func TestBadReleaseIsRolledBackAutomatically(t *testing.T) {
	for _, tc := range []struct {
		name, green, blue, figure string
		conns                     int
	}{
		{"answers 500 to a third of requests", "-fail-rate 0.3", "-delay 0s", "error rate", 32},
		// Delays of tens of milliseconds, so that a busy machine's scheduling noise, which
		// adds about the same to both p95s, cannot hide 3x behind deploy.max_latency_ratio 2.
		{"three times slower", "-delay 150ms", "-delay 50ms", "p95 latency", 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startDeployRig(t, tc.green, "", strings.Fields(tc.blue)...)
			stop := runLoad(t, r.url("/"), tc.conns)
			defer stop()
			// Enough of a baseline that the clients' first requests (which dial) are well
			// under the 5% a p95 leaves out.
			eventually(t, "load on blue", func() bool { return r.status(t).Active.Served > 500 })

			code, out, errOut := r.ctl(t, "deploy")
			if code != 1 {
				t.Fatalf("deploy of a bad release: exit %d, want 1\n%s\n%s", code, out, errOut)
			}
			if !strings.Contains(errOut, "rolled back") || !strings.Contains(errOut, tc.figure) || !strings.Contains(errOut, " vs ") {
				t.Fatalf("the message does not name %s with both values:\n%s", tc.figure, errOut)
			}
			if app := r.activeApp(t); app != "blue" {
				t.Fatalf("after the rollback traffic goes to %q, want blue", app)
			}
		})
	}
}

func TestDeployThatCannotStartSwitchesNothing(t *testing.T) {
	t.Run("start command fails", func(t *testing.T) {
		r := startDeployRig(t, "", "")
		// Replace deploy.start with one that fails, as a typo in the unit name would.
		cfg, _ := os.ReadFile(r.config)
		text := strings.Replace(string(cfg), "[deploy]\nstart = ", "[deploy]\nstart = \"echo no such unit >&2; exit 7\"\n# was: ", 1)
		os.WriteFile(r.config+".new", []byte(text), 0o644)
		os.Rename(r.config+".new", r.config)
		r.waitLog(t, "config applied")
		code, _, errOut := r.ctl(t, "deploy")
		if code != 1 || !strings.Contains(errOut, "exited with status 7") || !strings.Contains(errOut, "nothing was switched") {
			t.Fatalf("deploy with a failing start: exit %d\n%s", code, errOut)
		}
		if app := r.activeApp(t); app != "blue" {
			t.Fatalf("traffic moved to %q", app)
		}
	})
	t.Run("never healthy", func(t *testing.T) {
		r := startDeployRig(t, "-unhealthy", "")
		code, _, errOut := r.ctl(t, "deploy")
		if code != 1 || !strings.Contains(errOut, "never became healthy") || !strings.Contains(errOut, "HTTP 503") {
			t.Fatalf("deploy of a version that is never healthy: exit %d\n%s", code, errOut)
		}
		if app := r.activeApp(t); app != "blue" {
			t.Fatalf("traffic moved to %q", app)
		}
	})
}

func TestDeployGoesOnWhenTheCLIIsKilledAndAbortsFromAnotherShell(t *testing.T) {
	r := startDeployRig(t, "", "")
	cli := osexec.Command(filepath.Join(bin, "routiectl"), "--socket", r.socket, "deploy")
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deploy to reach its monitor window", func() bool {
		s := r.status(t)
		return s.Deploy != nil && s.Deploy.Phase == "monitor"
	})
	cli.Process.Kill() // the SSH session drops
	cli.Wait()
	code, out, _ := r.ctl(t, "status")
	if code != 0 || !strings.Contains(out, "monitor") {
		t.Fatalf("status after the CLI died: exit %d\n%s", code, out)
	}
	code, out, errOut := r.ctl(t, "deploy", "--abort")
	if code != 0 {
		t.Fatalf("deploy --abort: exit %d\n%s%s", code, out, errOut)
	}
	eventually(t, "the abort to finish", func() bool { return r.status(t).Deploy == nil })
	if app := r.activeApp(t); app != "blue" {
		t.Fatalf("after abort traffic goes to %q, want blue", app)
	}
	_, out, _ = r.ctl(t, "history")
	if !strings.Contains(out, "aborted") {
		t.Fatalf("history does not record the abort:\n%s", out)
	}
}

func TestRestartDuringTheMonitorWindowKeepsTheNewTargetAndRecordsTheDeployInterrupted(t *testing.T) {
	r := startDeployRig(t, "", "")
	cfg, _ := os.ReadFile(r.config)
	os.WriteFile(r.config, []byte(strings.Replace(string(cfg), `monitor = "3s"`, `monitor = "5m"`, 1)), 0o644)
	r.stop(t)
	r.restart(t)

	cli := osexec.Command(filepath.Join(bin, "routiectl"), "--socket", r.socket, "deploy")
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cli.Process.Kill(); cli.Wait() }()
	eventually(t, "the deploy to reach its monitor window", func() bool {
		s := r.status(t)
		return s.Deploy != nil && s.Deploy.Phase == "monitor"
	})
	if code := r.stop(t); code != 0 {
		t.Fatalf("routied exited %d", code)
	}
	r.restart(t)
	if app := r.activeApp(t); app != "green" {
		t.Fatalf("after the restart traffic goes to %q, want green (the persisted active target)", app)
	}
	_, out, _ := r.ctl(t, "history")
	if !strings.Contains(out, "interrupted") || !strings.Contains(out, "monitor") {
		t.Fatalf("history does not say the deploy was interrupted during its monitor window:\n%s", out)
	}
}

func TestDeployFinishesAfterTheCLIIsKilled(t *testing.T) {
	r := startDeployRig(t, "", "")
	cli := osexec.Command(filepath.Join(bin, "routiectl"), "--socket", r.socket, "deploy")
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deploy to switch", func() bool {
		s := r.status(t)
		return s.Deploy != nil && (s.Deploy.Phase == "monitor" || s.Deploy.Phase == "stop")
	})
	cli.Process.Kill() // the SSH session drops
	cli.Wait()
	eventually(t, "the deploy to finish without its CLI", func() bool {
		_, out, _ := r.ctl(t, "history")
		return strings.Contains(out, "succeeded")
	})
	if app := r.activeApp(t); app != "green" {
		t.Fatalf("after the deploy traffic goes to %q, want green", app)
	}
}
