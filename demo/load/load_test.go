package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain runs the real main when re-executed by runMain, so exit codes are tested as a
// script sees them.
func TestMain(m *testing.M) {
	if os.Getenv("DEMO_LOAD_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runMain(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DEMO_LOAD_RUN_MAIN=1")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running main: %v", err)
	}
	return out.String(), errOut.String(), code
}

// testConfig is the command line's defaults for url, bounded to n requests.
func testConfig(t *testing.T, url string, n int, args ...string) config {
	t.Helper()
	args = append([]string{"-url", url, "-c", "4", "-d", "10s", "-n", strconv.Itoa(n), "-timeout", "5s"}, args...)
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(%q): %v", args, err)
	}
	return cfg
}

func runLoad(t *testing.T, cfg config) *report {
	t.Helper()
	rep, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep
}

func TestLoadCountsResponsesByHeaderValue(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1)%2 == 0 {
			w.Header().Set("X-App", "green")
		} else {
			w.Header().Set("X-App", "blue")
		}
	}))
	t.Cleanup(srv.Close)

	rep := runLoad(t, testConfig(t, srv.URL, 100))
	if !rep.OK || rep.Requests != 100 || rep.Counts["blue"] != 50 || rep.Counts["green"] != 50 {
		t.Errorf("report = ok %v, %d requests, counts %v; want ok, 100, blue=50 green=50", rep.OK, rep.Requests, rep.Counts)
	}
	if rep.Opened != 4 {
		t.Errorf("opened %d connections; want 4, one kept alive per -c", rep.Opened)
	}
}

func TestLoadReportsNon2xxAsNotOK(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)

	rep := runLoad(t, testConfig(t, srv.URL, 10))
	if rep.OK || rep.Non2xx != 10 || rep.Failed != 0 || rep.Status["502"] != 10 {
		t.Errorf("report = ok %v, non-2xx %d, failed %d, status %v; want not ok, 10 non-2xx of status 502",
			rep.OK, rep.Non2xx, rep.Failed, rep.Status)
	}
}

func TestLoadCountsRefusedConnectionsAsFailed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()

	rep := runLoad(t, testConfig(t, dead, 8))
	if rep.OK || rep.Failed != 8 || rep.Errors["dial: connect: connection refused"] != 8 {
		t.Errorf("report = ok %v, failed %d, errors %v; want not ok, 8 failed as \"dial: connect: connection refused\"",
			rep.OK, rep.Failed, rep.Errors)
	}
}

func TestLoadDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Add(1) }))
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusPermanentRedirect))
	t.Cleanup(redirect.Close)

	rep := runLoad(t, testConfig(t, redirect.URL, 5))
	if rep.OK || rep.Status["308"] != 5 || followed.Load() != 0 {
		t.Errorf("report = ok %v, status %v, %d followed; want not ok, 5 × 308, none followed",
			rep.OK, rep.Status, followed.Load())
	}
}

func TestLoadNeedsInsecureForSelfSignedTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)

	if rep := runLoad(t, testConfig(t, srv.URL, 4)); rep.OK || rep.Failed != 4 {
		t.Errorf("without -insecure: ok %v, failed %d; want every request failed", rep.OK, rep.Failed)
	}
	if rep := runLoad(t, testConfig(t, srv.URL, 4, "-insecure")); !rep.OK {
		t.Errorf("with -insecure: ok %v, failed %d, errors %v; want ok", rep.OK, rep.Failed, rep.Errors)
	}
}

func TestLoadStopsAtTheDuration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)

	cfg := testConfig(t, srv.URL, 0, "-d", "200ms")
	start := time.Now()
	rep := runLoad(t, cfg)
	if took := time.Since(start); took > 5*time.Second || !rep.OK || rep.Requests == 0 {
		t.Errorf("-d 200ms took %v with ok %v and %d requests; want about 200ms, ok", took, rep.OK, rep.Requests)
	}
}

func TestExitStatusTellsScriptsWhetherAllSucceeded(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ok.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(failing.Close)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"all 2xx", []string{"-url", ok.URL, "-n", "5"}, 0, "result:       ok"},
		{"some 503", []string{"-url", failing.URL, "-n", "5"}, 1, "non-2xx:      5"},
		{"json", []string{"-url", ok.URL, "-n", "5", "-json"}, 0, `"ok": true`},
		{"bad flag", []string{"-url", ok.URL, "-c", "0"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runMain(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantOut) {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d and %q", code, stdout, stderr, tt.wantCode, tt.wantOut)
			}
		})
	}
}

func TestURLMustBeLoopback(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string
	}{
		{"http://127.0.0.1:8080/", ""},
		{"https://localhost:8443/", ""},
		{"http://[::1]:8000/", ""},
		{"http://127.1.2.3/", ""},
		{"http://example.com/", "not loopback"},
		{"http://10.0.0.1:8080/", "not loopback"},
		{"ftp://127.0.0.1/", "want an http:// or https:// URL"},
		{"127.0.0.1:8080", "want an http:// or https:// URL"},
		{"", "-url is required"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := checkURL(tt.url)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkURL(%q) = %v; want error containing %q", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestHistogramQuantilesAreWithinOnePercent(t *testing.T) {
	var h histogram
	for us := 1; us <= 100_000; us++ {
		h.record(time.Duration(us) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := time.Duration(q*100_000) * time.Microsecond
		got := h.quantile(q)
		if diff := (got - want).Abs(); diff > want/100 {
			t.Errorf("quantile(%v) = %v; want %v within 1%%", q, got, want)
		}
	}
	if h.max != 100*time.Millisecond {
		t.Errorf("max = %v; want 100ms", h.max)
	}
}

func TestHistogramBucketsAreOrderedAndContainTheirValues(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<32 - 1} {
		i := bucketOf(v)
		if i < prev || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d (of %d buckets); want ordered and in range", v, i, prev, histBuckets)
		}
		if mid := bucketMid(i); float64(max(mid, v)-min(mid, v)) > float64(v)/histSub+1 {
			t.Errorf("bucketMid(bucketOf(%d)) = %d; want within 1/%d", v, mid, histSub)
		}
		prev = i
	}
}
