package control

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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
)

// The tests of this package run the control API as routied wires it: the real switcher and
// proxy in front of apps on 127.0.0.1, and the control server on a real unix socket.

// app stands in for the Spring Boot app: a real HTTP server on 127.0.0.1 that answers health
// probes and holds requests on /hold until told.
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
// test can see what happened before the switcher's next probe.
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
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, r *http.Request) {
		a.held <- struct{}{}
		select {
		case <-a.release:
		case <-r.Context().Done():
		}
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
// the control server on a real unix socket.
type rig struct {
	sw *switcher.Switcher
	// front is routie's proxy, where the apps' users connect; web is one of those users.
	front *httptest.Server
	web   *http.Client
	// socket is the control socket; client talks to it.
	socket string
	client *Client
	// logs is routied's log: the control server's and the switcher's.
	logs *lockedBuffer
}

// newRig starts routied serving initial, with a control socket in a fresh directory.
func newRig(t *testing.T, initial *app) *rig {
	t.Helper()
	return newRigAt(t, socketPath(t), initial.addr())
}

// newRigAt starts routied serving initial ("host:port") with its control socket at socket.
func newRigAt(t *testing.T, socket, initial string) *rig {
	t.Helper()
	r := &rig{socket: socket, logs: &lockedBuffer{}, web: &http.Client{Transport: &http.Transport{}}}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	p := proxy.New(log)
	p.SetAccessLog(false)
	sw, err := switcher.New(p, health.NewChecker(), switcher.NewStore(t.TempDir()), testSettings(), initial, log)
	if err != nil {
		t.Fatal(err)
	}
	r.sw = sw
	r.front = httptest.NewServer(p)
	ln, err := Listen(socket, 0o600)
	if err != nil {
		sw.Close()
		r.front.Close()
		t.Fatal(err)
	}
	srv := NewServer(sw, log)
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
	r.client = NewClient(socket)
	return r
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

// gating starts a switch to a, whose health must fail, as another routiectl would, and returns
// once its health gate has probed a. The switch stays in progress until the test ends.
func (r *rig) gating(t *testing.T, a *app) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := r.client.Switch(ctx, SwitchRequest{Target: a.port(), Wait: Duration(time.Minute)}, func(switcher.Event) {
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

// raw sends one request to the control socket as curl would and returns the answer and its
// body.
func (r *rig) raw(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", r.socket)
		},
	}}
	t.Cleanup(c.CloseIdleConnections)
	req, err := http.NewRequest(method, "http://routie"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// waitForLog polls routied's log for want: the handler logs a switch's outcome after the
// switcher returns, which may be after the client has gone.
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

// socketPath returns a path for a control socket in a fresh directory. It avoids t.TempDir,
// whose long names can pass the 108-byte limit of a unix socket path.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "control.sock")
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
