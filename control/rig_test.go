package control

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/switcher"
)

// The tests of this package run the control API as routied wires it: the real switcher and
// proxy in front of apps on 127.0.0.1 (testrig), and the control server on a real unix socket.

// rig is routied without its config and TLS, with client talking to its control socket.
type rig struct {
	*testrig.Rig
	client *Client
}

// newRig starts routied serving initial, with a control socket in a fresh directory and its
// control API built with opts.
func newRig(t *testing.T, initial *testrig.App, opts ...Option) *rig {
	t.Helper()
	return newRigAt(t, testrig.SocketPath(t), initial.Addr(), opts...)
}

// newRigAt starts routied serving initial ("host:port") with its control socket at socket.
func newRigAt(t *testing.T, socket, initial string, opts ...Option) *rig {
	t.Helper()
	r := testrig.NewRig(t, initial, testrig.Options{
		Settings:    testrig.PatientSettings(),
		CaptureLogs: true,
		Control:     startControl(opts...),
		Socket:      socket,
	})
	return &rig{Rig: r, client: NewClient(socket)}
}

// startControl listens on socket and serves the control API there with opts, as routied does.
func startControl(opts ...Option) testrig.StartControl {
	return func(socket string, sw *switcher.Switcher, log *slog.Logger) (net.Listener, *http.Server, error) {
		ln, err := Listen(socket, 0o600)
		if err != nil {
			return nil, nil, err
		}
		return ln, NewServer(sw, log, opts...), nil
	}
}

// raw sends one request to the control socket as curl would and returns the answer and its
// body.
func (r *rig) raw(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", r.Socket)
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
