package testrig

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
)

// FastSettings are routied's settings, made fast: a probe every 10ms with a 1s timeout, two
// passes, a 2s wait, and 10s to drain requests and streams.
func FastSettings() switcher.Settings {
	return switcher.Settings{
		Host:         "127.0.0.1",
		Probe:        health.Probe{Path: "/actuator/health", Timeout: time.Second},
		Interval:     10 * time.Millisecond,
		Passes:       2,
		Wait:         2 * time.Second,
		DrainTimeout: 10 * time.Second,
		StreamGrace:  10 * time.Second,
	}
}

// PatientSettings are FastSettings with a 5s probe timeout and a 5s wait: far longer than two
// passing probes take, so that only a test that asks for a short wait sees a switch refused;
// short enough that a wait that is lost fails fast.
func PatientSettings() switcher.Settings {
	st := FastSettings()
	st.Probe.Timeout = 5 * time.Second
	st.Wait = 5 * time.Second
	return st
}

// StartControl starts what routied serves on its control socket: it listens on socket and
// returns the listener with the server that is to serve it. The control package provides
// both (control.Listen, control.NewServer); testrig does not import it (see the package doc).
type StartControl func(socket string, sw *switcher.Switcher, log *slog.Logger) (net.Listener, *http.Server, error)

// Options say how NewRig builds a rig. The zero value is a rig with FastSettings, its state
// in a fresh directory, its log on t.Output at warn level, and no control server.
type Options struct {
	// Settings are the switcher's. Default (zero value): FastSettings().
	Settings switcher.Settings
	// Dir is the state directory. Default: t.TempDir().
	Dir string
	// Store is the switcher's state store. Default: switcher.NewStore(Dir).
	Store *switcher.Store
	// CaptureLogs sends the log, every level, to Rig.Logs instead of t.Output; it is printed
	// if the test fails.
	CaptureLogs bool
	// LogLevel is the least level logged to t.Output when not capturing. Default: warn.
	LogLevel slog.Leveler
	// Control, when set, starts a control server on Socket. Default: none.
	Control StartControl
	// Socket is the control socket's path. Default: SocketPath(t).
	Socket string
}

// Rig is routied without its config and TLS, on real sockets: the proxy in front of the apps,
// its switcher, and optionally the control server on a unix socket.
type Rig struct {
	Proxy    *proxy.Proxy
	Switcher *switcher.Switcher
	Store    *switcher.Store
	// Dir is the state directory: the switcher's store is in it.
	Dir string
	// Front is routie's proxy, where the apps' users connect; Web is one of those users.
	Front *httptest.Server
	Web   *http.Client
	// Log is routied's logger; with Options.CaptureLogs, Logs holds what it wrote.
	Log  *slog.Logger
	Logs *LogBuffer
	// Socket is the control socket's path; empty without a control server.
	Socket string
}

// NewRig starts routied serving initial ("host:port"). Everything stops when the test ends,
// in routied's order: the control server first, waiting for the switches it runs, then the
// switcher, which cancels what is left on the targets, then the proxy's server.
func NewRig(t testing.TB, initial string, o Options) *Rig {
	t.Helper()
	if o.Settings == (switcher.Settings{}) {
		o.Settings = FastSettings()
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Store == nil {
		o.Store = switcher.NewStore(o.Dir)
	}
	r := &Rig{Store: o.Store, Dir: o.Dir, Web: &http.Client{Transport: &http.Transport{}}}
	if o.CaptureLogs {
		r.Logs = &LogBuffer{}
		r.Log = slog.New(slog.NewTextHandler(r.Logs, nil))
	} else {
		level := o.LogLevel
		if level == nil {
			level = slog.LevelWarn
		}
		r.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
	}
	r.Proxy = proxy.New(r.Log)
	r.Proxy.SetAccessLog(false)
	sw, err := switcher.New(r.Proxy, health.NewChecker(), r.Store, o.Settings, initial, r.Log)
	if err != nil {
		t.Fatal(err)
	}
	r.Switcher = sw
	r.Front = httptest.NewServer(r.Proxy)
	var srv *http.Server
	served := make(chan error, 1)
	if o.Control != nil {
		r.Socket = o.Socket
		if r.Socket == "" {
			r.Socket = SocketPath(t)
		}
		var ln net.Listener
		ln, srv, err = o.Control(r.Socket, sw, r.Log)
		if err != nil {
			sw.Close()
			r.Front.Close()
			t.Fatal(err)
		}
		go func() { served <- srv.Serve(ln) }()
	}
	t.Cleanup(func() {
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("control server still busy at the end of the test: %v", err)
				srv.Close()
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		}
		sw.Close()
		r.Web.CloseIdleConnections()
		r.Front.Close()
		if r.Logs != nil && t.Failed() {
			t.Logf("routied's log:\n%s", r.Logs)
		}
	})
	return r
}

// Hold sends a request through routie to GET /hold on a, the active app, and returns once it
// is in flight there. The channel receives the request's status once a releases it, or 0 if
// it failed.
func (r *Rig) Hold(t testing.TB, a *App) <-chan int {
	t.Helper()
	status := make(chan int, 1)
	go func() {
		resp, err := r.Web.Get(r.Front.URL + "/hold")
		if err != nil {
			status <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	Recv(t, a.held, "a request to reach "+a.Addr())
	return status
}

// WaitForLog polls the captured log (Options.CaptureLogs) for want: some things are logged
// after the call that caused them has returned.
func (r *Rig) WaitForLog(t testing.TB, want string) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !strings.Contains(r.Logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", want, r.Logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Gating starts a switch to a, whose health must fail, over the control socket as another
// routiectl would, and returns once its health gate has probed a: the first line of the
// switch's progress has arrived. The switch stays in progress until the test ends. It speaks
// the wire protocol itself (POST /v1/switch, NDJSON back), so that the control package's own
// tests can use it too.
func (r *Rig) Gating(t testing.TB, a *App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", r.Socket)
	}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://routie/v1/switch",
		strings.NewReader(`{"target":"`+a.Port()+`","wait":"1m"}`))
	type line struct {
		text string
		err  error
	}
	first := make(chan line, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := c.Do(req)
		if err != nil {
			first <- line{err: err}
			return
		}
		defer resp.Body.Close()
		text, err := bufio.NewReader(resp.Body).ReadString('\n')
		first <- line{text, err}
		io.Copy(io.Discard, resp.Body) // until the test ends and cancels the switch
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		c.CloseIdleConnections()
	})
	l := Recv(t, first, "the first probe of the switch to "+a.Addr())
	if l.err != nil || !strings.HasPrefix(l.text, `{"event"`) {
		t.Fatalf("the switch to %s that should keep gating ended: %q, %v", a.Addr(), l.text, l.err)
	}
}
