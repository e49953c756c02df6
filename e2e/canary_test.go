package e2e

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
)

func TestCanaryPinsBrowsersSurvivesARestartAndAborts(t *testing.T) {
	blue, green := demoApp(t, "blue"), demoApp(t, "green")
	d := startDaemon(t, blue)

	code, out, errOut := d.ctl(t, "canary", strconv.Itoa(green), "--weight", "20")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("canary 127.0.0.1:%d takes 20%% of the clients", green)) {
		t.Fatalf("routiectl canary: exit %d\n%s%s", code, out, errOut)
	}

	// A client without cookies is split at each request.
	c := httpsClient()
	count := map[string]int{}
	const n = 1000
	for range n {
		_, app, _ := fetch(t, c, d.url("/"))
		count[app]++
	}
	if share := 100 * count["green"] / n; share < 15 || share > 25 {
		t.Errorf("the canary at 20%% got %d of %d cookieless requests (%v)", count["green"], n, count)
	}

	// Browsers keep to their side, across a restart of routied too.
	type browser struct {
		c   *http.Client
		app string
	}
	var browsers []browser
	sides := map[string]bool{}
	for i := 0; i < 60 && len(sides) < 2; i++ {
		b := httpsClient()
		b.Jar, _ = cookiejar.New(nil)
		_, app, _ := fetch(t, b, d.url("/"))
		browsers = append(browsers, browser{b, app})
		sides[app] = true
	}
	if len(sides) < 2 {
		t.Fatalf("60 browsers all went to %v", sides)
	}
	code, out, _ = d.ctl(t, "status")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("canary    127.0.0.1:%d  up  20%% of the clients", green)) {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("routied exited %d on SIGTERM", code)
	}
	d.restart(t)
	if s := d.status(t); s.Canary == nil || s.Weight != 20 {
		t.Fatalf("after a restart: canary %+v at %d%%; want it kept at 20%%", s.Canary, s.Weight)
	}
	for i, b := range browsers {
		for range 5 {
			if _, app, _ := fetch(t, b.c, d.url("/")); app != b.app {
				t.Fatalf("browser %d was on %s and went to %s (after the restart)", i, b.app, app)
			}
		}
	}

	code, out, errOut = d.ctl(t, "abort")
	if code != 0 || !strings.Contains(out, "aborted canary") || !strings.Contains(out, "drained") {
		t.Fatalf("routiectl abort: exit %d\n%s%s", code, out, errOut)
	}
	for _, b := range browsers {
		if _, app, _ := fetch(t, b.c, d.url("/")); app != "blue" {
			t.Fatalf("after the abort a browser went to %q, want blue", app)
		}
	}
}

func TestCanaryDeployUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name, green string
		code        int
		want        []string
		active      string
	}{
		{"a clean release is promoted", "", 0,
			[]string{"canary", "takes 10% of the clients", "now takes 50% of the clients", "promoted", "succeeded"}, "green"},
		{"a release answering 500 to a third is rolled back", "-fail-rate 0.3", 1,
			[]string{"canary", "takes 10% of the clients", "aborted canary", "drained"}, "blue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startDeployRig(t, tc.green, "")
			stop := runLoad(t, r.url("/"), 32)
			defer stop()
			eventually(t, "load on blue", func() bool { return r.status(t).Active.Served > 300 })

			code, out, errOut := r.ctl(t, "deploy", "--canary", "10,50", "--step", "2s")
			rep := stop()
			t.Logf("routiectl deploy --canary 10,50 --step 2s:\n%s%s", out, errOut)
			if code != tc.code {
				t.Fatalf("routiectl deploy --canary: exit %d, want %d\n%s\n%s", code, tc.code, out, errOut)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if tc.code != 0 && (!strings.Contains(errOut, "rolled back") || !strings.Contains(errOut, "error rate")) {
				t.Errorf("the message does not say it rolled back on the error rate:\n%s", errOut)
			}
			// The failing release's 500s are its own answers; routie itself drops nothing.
			if rep.Failed != 0 || rep.Requests == 0 {
				t.Fatalf("during the deploy: %d requests, %d failed (%v)", rep.Requests, rep.Failed, rep.Errors)
			}
			if app := r.activeApp(t); app != tc.active {
				t.Fatalf("after the deploy traffic goes to %q, want %s", app, tc.active)
			}
			if s := r.status(t); s.Canary != nil {
				t.Fatalf("a canary still runs after the deploy: %+v", s.Canary)
			}
		})
	}
}
