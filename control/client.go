package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/switcher"
)

// Client speaks the control protocol to routied. Errors answered by the daemon are *Error;
// a socket that cannot be dialled gives an error naming it and what to check. Its zero value
// is not usable; call NewClient.
type Client struct {
	socket string
	http   *http.Client
	// statusRetry is how long Status retries while the socket is missing or refuses, as it
	// does while routied starts. Default 1s.
	statusRetry time.Duration
	// dial connects to the socket; tests wrap it to see each attempt.
	dial func(ctx context.Context) (net.Conn, error)
}

// NewClient returns a Client for the control socket at socketPath. It sets no timeouts of its
// own: a switch lasts as long as its health gate, so bound calls with their context.
func NewClient(socketPath string) *Client {
	c := &Client{socket: socketPath, statusRetry: time.Second}
	c.dial = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socketPath)
	}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := c.dial(ctx)
			if err != nil {
				return nil, newDialError(socketPath, err)
			}
			return conn, nil
		},
		DisableCompression: true,
		MaxIdleConns:       1,
	}}
	return c
}

// Socket is the path the client dials.
func (c *Client) Socket() string { return c.socket }

// Status returns the daemon's status. While the socket is missing or refuses connections, as
// it does for a moment while routied starts, it retries for up to a second (and within ctx).
func (c *Client) Status(ctx context.Context) (StatusResponse, error) {
	raw, err := c.StatusJSON(ctx)
	if err != nil {
		return StatusResponse{}, err
	}
	var s StatusResponse
	if err := decodeStatus(raw, &s); err != nil {
		return StatusResponse{}, fmt.Errorf("routied sent a status that does not parse: %w", err)
	}
	return s, nil
}

// StatusJSON returns the daemon's status as the JSON it sent, for `routiectl status --json`.
// It retries as Status does.
func (c *Client) StatusJSON(ctx context.Context) ([]byte, error) {
	deadline := time.Now().Add(c.statusRetry)
	for {
		raw, err := c.get(ctx, PathStatus)
		var de *dialError
		if err == nil || !errors.As(err, &de) || !de.starting() || time.Now().After(deadline) {
			return raw, err
		}
		select {
		case <-ctx.Done():
			return nil, err // the socket's error says more than "context canceled"
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Switch asks routied to make req.Target active and calls onEvent, if not nil, with each step
// as it happens. A refused switch is an *Error of kind KindRefused. Cancelling ctx hangs up,
// which makes routied abort the health gate if it is still running; a swap already done stays.
func (c *Client) Switch(ctx context.Context, req SwitchRequest, onEvent func(switcher.Event)) (switcher.Report, error) {
	return c.stream(ctx, PathSwitch, req, onEvent)
}

// Rollback asks routied to make the standby active again, as Switch does.
func (c *Client) Rollback(ctx context.Context, force bool, onEvent func(switcher.Event)) (switcher.Report, error) {
	return c.RollbackWith(ctx, RollbackRequest{Force: force}, onEvent)
}

// RollbackWith is Rollback with every option of the request, such as Start.
func (c *Client) RollbackWith(ctx context.Context, req RollbackRequest, onEvent func(switcher.Event)) (switcher.Report, error) {
	return c.stream(ctx, PathRollback, req, onEvent)
}

// Health asks routied to probe target once. A failed probe is a Result with Passed false,
// not an error.
func (c *Client) Health(ctx context.Context, target string) (health.Result, error) {
	var r health.Result
	resp, err := c.do(ctx, http.MethodPost, PathHealth, HealthRequest{Target: target})
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("reading routied's health answer: %w", err)
	}
	return r, nil
}

// Certs returns the certificate the daemon serves for each name.
func (c *Client) Certs(ctx context.Context) (CertsResponse, error) {
	var r CertsResponse
	raw, err := c.CertsJSON(ctx)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("reading routied's certs answer: %w", err)
	}
	return r, nil
}

// CertsJSON returns the daemon's certs answer as the JSON it sent, for `routiectl certs
// --json`.
func (c *Client) CertsJSON(ctx context.Context) ([]byte, error) {
	return c.get(ctx, PathCerts)
}

// RenewCert asks routied to replace the certificate for name now, and returns the new
// certificate's status once routied serves it. It takes as long as the CA does; bound it
// with ctx.
func (c *Client) RenewCert(ctx context.Context, name string) (CertStatus, error) {
	var st CertStatus
	resp, err := c.do(ctx, http.MethodPost, PathRenew, RenewRequest{Name: name})
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("reading routied's renew answer: %w", err)
	}
	return st, nil
}

// Version returns the daemon's version.
func (c *Client) Version(ctx context.Context) (VersionResponse, error) {
	var v VersionResponse
	raw, err := c.get(ctx, PathVersion)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("reading routied's version answer: %w", err)
	}
	return v, nil
}

// stream posts body to path and reads the NDJSON answer to its end.
func (c *Client) stream(ctx context.Context, path string, body any, onEvent func(switcher.Event)) (switcher.Report, error) {
	resp, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return switcher.Report{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var line StreamLine
		if err := dec.Decode(&line); err != nil {
			if ctx.Err() != nil {
				return switcher.Report{}, fmt.Errorf("waiting for routied's answer to POST %s: %w", path, ctx.Err())
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return switcher.Report{}, errors.New("routied ended the answer before the switch finished (did it restart?); see routiectl status for the active target")
			}
			return switcher.Report{}, fmt.Errorf("reading routied's progress: %w", err)
		}
		switch {
		case line.Error != nil:
			return switcher.Report{}, line.Error
		case line.Result != nil:
			return *line.Result, nil
		case line.Event != nil && onEvent != nil:
			onEvent(*line.Event)
		}
	}
}

func (c *Client) get(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading routied's answer to GET %s: %w", path, err)
	}
	return raw, nil
}

// do sends a request and returns the response if its status is 2xx; otherwise the daemon's
// *Error.
func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://routie"+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var de *dialError
		if errors.As(err, &de) {
			return nil, de // without net/http's "Post \"http://routie/v1/switch\":" prefix
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return nil, fmt.Errorf("talking to routied at %s: %w", c.socket, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	var line StreamLine
	if json.Unmarshal(raw, &line) == nil && line.Error != nil {
		return nil, line.Error
	}
	return nil, &Error{
		Kind:    KindInternal,
		Message: fmt.Sprintf("%s %s: the process at %s answered %s without a routied error (is it routied?): %s", method, path, c.socket, resp.Status, snippet(raw)),
		Status:  resp.StatusCode,
	}
}

// dialError is a control socket that cannot be dialled. Its message names the socket and what
// to check.
type dialError struct {
	socket string
	err    error
	// group is the socket's group, named in the advice for a permission error; "" if unknown.
	group string
}

func newDialError(socket string, err error) *dialError {
	e := &dialError{socket: socket, err: err}
	if errors.Is(err, fs.ErrPermission) {
		if fi, serr := os.Stat(socket); serr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				gid := strconv.FormatUint(uint64(st.Gid), 10)
				e.group = gid
				if g, gerr := user.LookupGroupId(gid); gerr == nil {
					e.group = g.Name
				}
			}
		}
	}
	return e
}

func (e *dialError) Unwrap() error { return e.err }

// starting reports whether the error is what a routied that is still starting looks like.
func (e *dialError) starting() bool {
	return errors.Is(e.err, fs.ErrNotExist) || errors.Is(e.err, syscall.ECONNREFUSED)
}

func (e *dialError) Error() string {
	switch {
	case errors.Is(e.err, fs.ErrNotExist):
		return fmt.Sprintf("cannot reach routied at %s: no such file (is routied running? systemctl status routied; or pass --socket / set ROUTIE_SOCKET)", e.socket)
	case errors.Is(e.err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach routied at %s: connection refused; the socket is left from a routied that is not running (systemctl status routied)", e.socket)
	case errors.Is(e.err, fs.ErrPermission):
		join := "join the socket's group"
		if e.group != "" {
			join = fmt.Sprintf("join its group %s (sudo usermod -aG %s $USER, then log in again)", e.group, e.group)
		}
		return fmt.Sprintf("cannot reach routied at %s: permission denied; run as root, or %s", e.socket, join)
	}
	cause := e.err
	var opErr *net.OpError
	if errors.As(cause, &opErr) && opErr.Err != nil {
		cause = opErr.Err // drop "dial unix /path:", the path is named already
	}
	return fmt.Sprintf("cannot reach routied at %s: %v", e.socket, cause)
}

// decodeStatus decodes a status answer.
func decodeStatus(raw []byte, s *StatusResponse) error {
	return json.Unmarshal(raw, s)
}

// snippet shows the start of an unexpected answer on one line.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
