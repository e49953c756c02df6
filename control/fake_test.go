package control

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/routie/routie/health"
	"github.com/routie/routie/switcher"
)

// fakeSwitcher plays back a scripted switch. It stands in for *switcher.Switcher, which was
// being written alongside this package; the tests using it check the wire protocol (framing,
// status codes, cancellation), not switching, and can move to the real switcher as they are.
type fakeSwitcher struct {
	status   switcher.Status
	events   []switcher.Event
	report   switcher.Report
	err      error
	probe    health.Result
	probeErr error

	// afterEvent, when set, is called after each event is handed to Progress; a test blocks
	// in it to see that the event reached the client before the switch goes on.
	afterEvent func(i int)
	// block, when set, makes Switch wait for its context to end and return its error.
	block bool
	// calls receives every Switch/Rollback/Probe call, with the context it ran with.
	calls chan fakeCall
}

type fakeCall struct {
	method string
	target string
	opts   switcher.SwitchOptions
	ctx    context.Context
}

func (f *fakeSwitcher) record(c fakeCall) {
	if f.calls != nil {
		f.calls <- c
	}
}

func (f *fakeSwitcher) Switch(ctx context.Context, target string, opts switcher.SwitchOptions) (switcher.Report, error) {
	f.record(fakeCall{"switch", target, opts, ctx})
	return f.play(ctx, opts)
}

func (f *fakeSwitcher) Rollback(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error) {
	f.record(fakeCall{"rollback", "", opts, ctx})
	return f.play(ctx, opts)
}

func (f *fakeSwitcher) play(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error) {
	for i, ev := range f.events {
		opts.Progress(ev)
		if f.afterEvent != nil {
			f.afterEvent(i)
		}
	}
	if f.block {
		<-ctx.Done()
		return switcher.Report{}, errors.Join(errors.New("switch to 127.0.0.1:8081 cancelled before it was healthy"), ctx.Err())
	}
	return f.report, f.err
}

func (f *fakeSwitcher) Status() switcher.Status { return f.status }

func (f *fakeSwitcher) Probe(ctx context.Context, target string) (health.Result, error) {
	f.record(fakeCall{method: "probe", target: target, ctx: ctx})
	return f.probe, f.probeErr
}

// socketPath returns a path for a control socket in a fresh directory. It avoids t.TempDir,
// whose long names can pass the 108-byte limit of a unix socket path.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "routie")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "control.sock")
}

// daemon is a control server on a real unix socket.
type daemon struct {
	socket string
	client *Client
	logs   *lockedBuffer
}

func startDaemon(t *testing.T, sw Switcher) *daemon {
	t.Helper()
	return startDaemonAt(t, socketPath(t), sw)
}

func startDaemonAt(t *testing.T, path string, sw Switcher) *daemon {
	t.Helper()
	d := &daemon{socket: path, logs: &lockedBuffer{}}
	ln, err := Listen(d.socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(sw, slog.New(slog.NewTextHandler(d.logs, nil)))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	d.client = NewClient(d.socket)
	return d
}

// raw sends one request to the daemon as curl would and returns the answer and its body.
func (d *daemon) raw(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.socket)
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
