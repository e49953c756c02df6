package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestSwitchStatusRollbackThroughTheBinaries(t *testing.T) {
	blue, green := demoApp(t, "blue"), demoApp(t, "green")
	d := startDaemon(t, blue)
	if app := d.activeApp(t); app != "blue" {
		t.Fatalf("before any switch, traffic goes to %q, want blue", app)
	}

	code, out, errOut := d.ctl(t, "switch", strconv.Itoa(green))
	if code != 0 {
		t.Fatalf("routiectl switch %d: exit %d\nstdout: %s\nstderr: %s", green, code, out, errOut)
	}
	for _, want := range []string{"probe 1/2", "probe 2/2", "switched", "drained"} {
		if !strings.Contains(out, want) {
			t.Errorf("switch output lacks %q:\n%s", want, out)
		}
	}
	if app := d.activeApp(t); app != "green" {
		t.Fatalf("after the switch, traffic goes to %q, want green", app)
	}

	code, out, _ = d.ctl(t, "status", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d", code)
	}
	var st struct {
		Active  struct{ Addr string }
		Standby *struct{ Addr string }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if st.Active.Addr != fmt.Sprintf("127.0.0.1:%d", green) || st.Standby == nil || st.Standby.Addr != fmt.Sprintf("127.0.0.1:%d", blue) {
		t.Fatalf("status --json: active %q standby %+v; want green active, blue standby", st.Active.Addr, st.Standby)
	}

	code, out, _ = d.ctl(t, "switch", strconv.Itoa(green))
	if code != 0 || !strings.Contains(out, "already active") {
		t.Fatalf("switch to the active target: exit %d, %q; want 0 and 'already active'", code, out)
	}

	code, out, errOut = d.ctl(t, "rollback")
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errOut)
	}
	if app := d.activeApp(t); app != "blue" {
		t.Fatalf("after rollback, traffic goes to %q, want blue", app)
	}
	if !strings.Contains(d.log(), `"uid"`) {
		t.Errorf("routied did not log who asked for the switch (uid/pid)")
	}
}

func TestRefusedSwitchExitsOneAndKeepsTraffic(t *testing.T) {
	blue := demoApp(t, "blue")
	dead := freePort(t)
	d := startDaemon(t, blue)

	code, out, errOut := d.ctl(t, "switch", strconv.Itoa(dead), "--wait", "500ms")
	if code != 1 {
		t.Fatalf("switch to a dead port: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{strconv.Itoa(dead), "refused", "connection refused", "500ms"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refusal on stderr lacks %q:\n%s", want, errOut)
		}
	}
	if app := d.activeApp(t); app != "blue" {
		t.Fatalf("after a refused switch, traffic goes to %q, want blue", app)
	}
}

func TestSlowRequestCompletesAcrossSwitchAndIsCountedInTheDrain(t *testing.T) {
	blue, green := demoApp(t, "blue"), demoApp(t, "green")
	d := startDaemon(t, blue)

	type answer struct {
		status int
		app    string
		err    error
	}
	slow := make(chan answer, 1)
	go func() {
		resp, err := httpsClient().Get(d.url("/slow?d=3s"))
		if err != nil {
			slow <- answer{err: err}
			return
		}
		resp.Body.Close()
		slow <- answer{status: resp.StatusCode, app: resp.Header.Get("X-App")}
	}()
	eventually(t, "the slow request to be in flight on blue", func() bool { return d.status(t).Active.InFlight == 1 })

	code, out, errOut := d.ctl(t, "switch", strconv.Itoa(green))
	if code != 0 {
		t.Fatalf("switch: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "waited for 1 in-flight request") {
		t.Errorf("switch output does not report draining 1 request:\n%s", out)
	}
	a := <-slow
	if a.err != nil || a.status != http.StatusOK || a.app != "blue" {
		t.Fatalf("the 3s request: %d from %q (%v); want 200 from blue", a.status, a.app, a.err)
	}
}

func TestRestartKeepsActiveTargetAndCorruptStateIsReported(t *testing.T) {
	blue, green := demoApp(t, "blue"), demoApp(t, "green")
	d := startDaemon(t, blue)
	if code, out, errOut := d.ctl(t, "switch", strconv.Itoa(green)); code != 0 {
		t.Fatalf("switch: exit %d\n%s%s", code, out, errOut)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("routied exited %d on SIGTERM, want 0", code)
	}

	d.restart(t)
	if app := d.activeApp(t); app != "green" {
		t.Fatalf("after a restart, traffic goes to %q, want green (the saved active target)", app)
	}
	d.stop(t)

	state := filepath.Join(d.dir, "state", "state.json")
	if err := os.WriteFile(state, []byte("{half a fi"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.restart(t)
	if !strings.Contains(d.log(), state) || !strings.Contains(d.log(), "corrupt") {
		t.Errorf("routied did not report the corrupt state file %s:\n%s", state, d.log())
	}
	if app := d.activeApp(t); app != "blue" {
		t.Fatalf("with a corrupt state file, traffic goes to %q, want blue (upstream.initial)", app)
	}
}

func TestConfigEditsApplyLiveAndInvalidOnesAreRefused(t *testing.T) {
	blue := demoApp(t, "blue")
	d := startDaemon(t, blue)
	plain := fmt.Sprintf("http://127.0.0.1:%d/?x=1", d.httpPort)
	client := httpsClient()

	resp, err := client.Get(plain)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantLocation := fmt.Sprintf("https://127.0.0.1:%d/?x=1", d.httpsPort)
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != wantLocation {
		t.Fatalf("plain HTTP with tls.redirect on: %d to %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), wantLocation)
	}

	// A valid edit, saved the way editors do: a new file renamed over the old one.
	save := func(extra string) {
		t.Helper()
		cfg, err := os.ReadFile(d.config)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(cfg), `domains = ["localhost", "127.0.0.1"]`, `domains = ["localhost", "127.0.0.1"]`+"\n"+extra, 1)
		tmp := d.config + ".swp"
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, d.config); err != nil {
			t.Fatal(err)
		}
	}
	save("redirect = false")
	eventually(t, "plain HTTP to be proxied after tls.redirect = false", func() bool {
		status, app, _ := fetch(t, client, plain)
		return status == 200 && app == "blue"
	})

	save("redirect = flase")
	d.waitLog(t, "config edit refused")
	if !strings.Contains(d.log(), "routie.toml:") {
		t.Errorf("the refusal does not name file:line:\n%s", d.log())
	}
	if status, app, _ := fetch(t, client, plain); status != 200 || app != "blue" {
		t.Fatalf("after an invalid edit plain HTTP got %d from %q; the running config should stay", status, app)
	}
}

func TestSecondDaemonOnTheSameSocketIsRefused(t *testing.T) {
	blue := demoApp(t, "blue")
	d := startDaemon(t, blue)
	other := writeConfig(t, shortDir(t), freePort(t), freePort(t), blue, "")
	// Same socket as the running daemon.
	cfg, _ := os.ReadFile(other)
	fixed := strings.Replace(string(cfg), "socket = ", "socket = "+strconv.Quote(d.socket)+"\n# was ", 1)
	os.WriteFile(other, []byte(fixed), 0o644)

	second := start(t, "routied", "-config", other)
	eventually(t, "the second routied to exit", second.exited)
	if code := second.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("second routied exit code %d, want 1", code)
	}
	// It says the socket is in use. (Its log is read from a pipe of our own, which may lag
	// its exit by a moment.)
	second.waitLog(t, "in use")
	if app := d.activeApp(t); app != "blue" {
		t.Fatalf("the first routied stopped serving: %q", app)
	}
}

func TestRoutiectlSaysWhichSocketWhenDaemonIsDown(t *testing.T) {
	socket := filepath.Join(shortDir(t), "nobody.sock")
	code, _, errOut := routiectl(t, socket, "status")
	if code != 1 {
		t.Fatalf("status with no daemon: exit %d, want 1", code)
	}
	if !strings.Contains(errOut, socket) {
		t.Fatalf("the error does not name the socket %s:\n%s", socket, errOut)
	}
}

func TestCheckValidatesAndPrintsTheEffectiveConfig(t *testing.T) {
	dir := shortDir(t)
	good := writeConfig(t, dir, 18000, 18443, 8080, "")
	out, err := exec(t, "routied", "-check", "-config", good)
	if err != nil {
		t.Fatalf("routied -check on a valid file: %v\n%s", err, out)
	}
	if !strings.Contains(out, `passes = 2`) || !strings.Contains(out, `timeout = "2s"`) {
		t.Errorf("-check did not print the effective config with defaults filled in:\n%s", out)
	}
	// The CA account's HMAC key is a secret: -check says it is set, never what it is.
	secret := filepath.Join(dir, "eab.toml")
	os.WriteFile(secret, []byte("[tls]\nmode = \"acme\"\ndomains = [\"routie.test\"]\nemail = \"ops@routie.test\"\neab_kid = \"kid-1\"\neab_hmac = \"c2VjcmV0LWhtYWMta2V5\"\n"), 0o644)
	out, err = exec(t, "routied", "-check", "-config", secret)
	if err != nil || strings.Contains(out, "c2VjcmV0LWhtYWMta2V5") || !strings.Contains(out, `eab_hmac = "(set; not shown)"`) {
		t.Errorf("routied -check with tls.eab_hmac: %v; want it valid, the key hidden:\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[health]\ninterval = \"5\"\n"), 0o644)
	out, err = exec(t, "routied", "-check", "-config", bad)
	if err == nil {
		t.Fatalf("routied -check accepted an invalid file:\n%s", out)
	}
	if !strings.Contains(out, "bad.toml:2: health.interval") || !strings.Contains(out, `"5s"`) {
		t.Errorf("-check error does not name file:line, key and fix:\n%s", out)
	}
}
