package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/routie/routie/control"
	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/switcher"
)

// routiectl is tested against routied's real parts, in this test process (testrig): the
// switcher and proxy in front of apps on 127.0.0.1, and the control server on a real unix
// socket that routiectl talks to.

// rig is routied without its config and TLS.
type rig struct{ *testrig.Rig }

// newRig starts routied serving initial, with its control socket in a fresh directory and
// its control API built with opts.
func newRig(t *testing.T, initial *testrig.App, opts ...control.Option) *rig {
	t.Helper()
	return &rig{testrig.NewRig(t, initial.Addr(), testrig.Options{
		Settings:    testrig.PatientSettings(),
		CaptureLogs: true,
		Control:     startControl(opts...),
	})}
}

// startControl listens on socket and serves the control API there with opts, as routied does.
func startControl(opts ...control.Option) testrig.StartControl {
	return func(socket string, sw *switcher.Switcher, log *slog.Logger) (net.Listener, *http.Server, error) {
		ln, err := control.Listen(socket, 0o600)
		if err != nil {
			return nil, nil, err
		}
		return ln, control.NewServer(sw, log, opts...), nil
	}
}

// get fetches path through routie and fails the test unless the app answers 200.
func (r *rig) get(t *testing.T, path string) {
	t.Helper()
	resp, err := r.Web.Get(r.Front.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s through routie: %s", path, resp.Status)
	}
}

// stream opens an event stream through routie to the active app and returns once routie
// counts it as a stream. It stays open until the test ends.
func (r *rig) stream(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Front.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	// routie moves the request to its target's streams before it passes the header on.
	resp, err := r.Web.Do(req)
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
