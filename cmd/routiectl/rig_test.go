package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routie/routie/control"
	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
)

// routiectl is tested against routied's real parts, in this test process: the switcher and
// proxy in front of apps on 127.0.0.1, and the control server on a real unix socket.

// app stands in for the Spring Boot app: a real HTTP server on 127.0.0.1 that answers health
// probes, holds requests on /hold until told, and keeps an event stream open on /events.
type app struct {
	srv *httptest.Server
	// health is the status GET /actuator/health answers; 200 to start.
	health atomic.Int32
	// probed counts the health probes that reached the app.
	probed atomic.Int32
	// probes, when not nil, holds each health probe until the test answers it; see nextProbe.
	probes chan chan struct{}
	// held receives a value for each request that reaches GET /hold; they wait for release.
	held        chan struct{}
	release     chan struct{}
	releaseOnce sync.Once
}

// startApp starts an app whose health probes pass.
func startApp(t *testing.T) *app { return newApp(t, false) }

// startHeldApp starts an app whose health probes each wait for the test to answer them, so a
// test can see what routiectl printed before the switcher's next probe.
func startHeldApp(t *testing.T) *app { return newApp(t, true) }

func newApp(t *testing.T, holdProbes bool) *app {
	t.Helper()
	a := &app{held: make(chan struct{}, 16), release: make(chan struct{})}
	if holdProbes {
		a.probes = make(chan chan struct{})
	}
	a.health.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /actuator/health", func(w http.ResponseWriter, r *http.Request) {
		a.probed.Add(1)
		if a.probes != nil {
			answer := make(chan struct{})
			select {
			case a.probes <- answer:
			case <-r.Context().Done():
				return
			}
			select {
			case <-answer:
			case <-r.Context().Done():
				return
			}
		}
		code := int(a.health.Load())
		w.WriteHeader(code)
		if code/100 == 2 {
			fmt.Fprint(w, `{"status":"UP"}`)
		} else {
			fmt.Fprint(w, `{"status":"DOWN"}`)
		}
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, r *http.Request) {
		a.held <- struct{}{}
		select {
		case <-a.release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": connected\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

// addr is the app's "127.0.0.1:port".
func (a *app) addr() string { return a.srv.Listener.Addr().String() }

// port is the app's port alone, as an operator writes a target.
func (a *app) port() string {
	_, port, _ := net.SplitHostPort(a.addr())
	return port
}

// nextProbe waits for a health probe to reach a, an app from startHeldApp, and returns the
// channel that answers it when closed.
func (a *app) nextProbe(t *testing.T) chan<- struct{} {
	t.Helper()
	return recv(t, a.probes, "a health probe of "+a.addr())
}

// releaseHeld answers every request held on /hold, now and later.
func (a *app) releaseHeld() { a.releaseOnce.Do(func() { close(a.release) }) }

// deadPort returns a 127.0.0.1 address where nothing listens: a listener opened and closed.
func deadPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// testSettings are routied's settings, made fast: a probe every 10ms, two passes.
func testSettings() switcher.Settings {
	return switcher.Settings{
		Host:     "127.0.0.1",
		Probe:    health.Probe{Path: "/actuator/health", Timeout: 5 * time.Second},
		Interval: 10 * time.Millisecond,
		Passes:   2,
		// Far longer than two passing probes take, so that only a test that asks for a short
		// wait sees a switch refused; short enough that a wait that is lost fails fast.
		Wait:         5 * time.Second,
		DrainTimeout: 10 * time.Second,
		StreamGrace:  10 * time.Second,
	}
}

// rig is routied without its config and TLS: the switcher and proxy in front of the apps, and
// the control server on a real unix socket that routiectl talks to.
type rig struct {
	sw *switcher.Switcher
	// front is routie's proxy, where the apps' users connect; web is one of those users.
	front *httptest.Server
	web   *http.Client
	// socket is the control socket.
	socket string
	// logs is routied's log: the control server's and the switcher's.
	logs *lockedBuffer
}

// newRig starts routied serving initial, with its control socket in a fresh directory.
func newRig(t *testing.T, initial *app) *rig {
	t.Helper()
	r := &rig{socket: socketPath(t), logs: &lockedBuffer{}, web: &http.Client{Transport: &http.Transport{}}}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	p := proxy.New(log)
	p.SetAccessLog(false)
	sw, err := switcher.New(p, health.NewChecker(), switcher.NewStore(t.TempDir()), testSettings(), initial.addr(), log)
	if err != nil {
		t.Fatal(err)
	}
	r.sw = sw
	r.front = httptest.NewServer(p)
	ln, err := control.Listen(r.socket, 0o600)
	if err != nil {
		sw.Close()
		r.front.Close()
		t.Fatal(err)
	}
	srv := control.NewServer(sw, log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		// As routied stops: the control server first, waiting for the switches it runs, then
		// the switcher, which cancels what is left on the targets, then the proxy's server.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("control server still busy at the end of the test: %v", err)
			srv.Close()
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		sw.Close()
		r.web.CloseIdleConnections()
		r.front.Close()
		if t.Failed() {
			t.Logf("routied's log:\n%s", r.logs)
		}
	})
	return r
}

// get fetches path through routie and fails the test unless the app answers 200.
func (r *rig) get(t *testing.T, path string) {
	t.Helper()
	resp, err := r.web.Get(r.front.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s through routie: %s", path, resp.Status)
	}
}

// hold sends a request through routie to GET /hold on a, the active app, and returns once it
// is in flight there. The channel receives the request's status once a releases it, or 0 if
// it failed.
func (r *rig) hold(t *testing.T, a *app) <-chan int {
	t.Helper()
	status := make(chan int, 1)
	go func() {
		resp, err := r.web.Get(r.front.URL + "/hold")
		if err != nil {
			status <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	recv(t, a.held, "a request to reach "+a.addr())
	return status
}

// stream opens an event stream through routie to the active app and returns once routie
// counts it as a stream. It stays open until the test ends.
func (r *rig) stream(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.front.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	// routie moves the request to its target's streams before it passes the header on.
	resp, err := r.web.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /events through routie: %s %s", resp.Status, ct)
	}
}

// gating starts a switch to a, whose health must fail, as another routiectl would, and returns
// once its health gate has probed a. The switch stays in progress until the test ends.
func (r *rig) gating(t *testing.T, a *app) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		req := control.SwitchRequest{Target: a.port(), Wait: control.Duration(time.Minute)}
		_, err := control.NewClient(r.socket).Switch(ctx, req, func(switcher.Event) {
			once.Do(func() { close(probed) })
		})
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-probed:
	case err := <-done:
		t.Fatalf("the switch to %s that should keep gating ended: %v", a.addr(), err)
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for the first probe of the switch to %s", a.addr())
	}
}

// waitForLog polls routied's log for want: the handler logs a switch's outcome after the
// switcher returns, which may be after routiectl has gone.
func (r *rig) waitForLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", want, r.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recv receives from c, failing the test if nothing comes within 10 seconds: far longer than
// any step here takes, far shorter than go test's own timeout.
func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// lockedBuffer is a log destination that the server's goroutines and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
