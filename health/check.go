// Package health probes a target over HTTP and tracks whether it is up, so that a switch only
// goes to a target that answers and a change of state is logged once.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Probe says how to check a target.
type Probe struct {
	// Path is the URL path requested with GET, e.g. "/actuator/health".
	Path string
	// Timeout bounds the whole probe: connect, headers and body.
	Timeout time.Duration
	// ExpectBody, when not empty, must appear in the response body for the probe to pass.
	ExpectBody string
}

// Result is the outcome of one probe.
type Result struct {
	// Target is the probed address, "host:port".
	Target string `json:"target"`
	// Passed is true for a 2xx answer whose body holds Probe.ExpectBody.
	Passed bool `json:"passed"`
	// Status is the HTTP status code, 0 when no answer came.
	Status int `json:"status,omitempty"`
	// Detail says in words what happened, for logs and for the operator.
	Detail string `json:"detail"`
	// Took is how long the probe ran.
	Took time.Duration `json:"took"`
	// At is when the probe started.
	At time.Time `json:"at"`
}

// String reads as a sentence fragment: "passed: HTTP 200 in 3ms".
func (r Result) String() string {
	verdict := "failed"
	if r.Passed {
		verdict = "passed"
	}
	return fmt.Sprintf("%s: %s", verdict, r.Detail)
}

// maxBody bounds how much of a health body is read; Actuator answers are small and a runaway
// endpoint must not make a probe allocate without limit.
const maxBody = 64 << 10

// Checker runs probes. Its zero value is not usable; call NewChecker.
type Checker struct {
	client *http.Client
}

// NewChecker returns a Checker with its own connection handling. Probes do not keep
// connections alive: a probe must neither reuse the proxy's pool nor leave idle connections
// open to a target that is being retired.
func NewChecker() *Checker {
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableKeepAlives:     true,
		DisableCompression:    true,
		ResponseHeaderTimeout: 0, // bounded by the probe's context
	}
	return &Checker{client: &http.Client{
		Transport: transport,
		// A redirect from a health endpoint is an answer, not something to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Check probes addr ("host:port") once.
func (c *Checker) Check(ctx context.Context, addr string, p Probe) Result {
	start := time.Now()
	r := c.check(ctx, addr, p)
	r.Target = addr
	r.At = start
	r.Took = time.Since(start).Round(time.Millisecond)
	if r.Passed {
		r.Detail = fmt.Sprintf("%s in %s", r.Detail, r.Took)
	}
	return r
}

func (c *Checker) check(ctx context.Context, addr string, p Probe) Result {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	url := "http://" + addr + p.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Result{Detail: fmt.Sprintf("cannot build a request for %s: %v", url, err)}
	}
	req.Header.Set("User-Agent", "routie-health")
	resp, err := c.client.Do(req)
	if err != nil {
		return Result{Detail: describe(err, addr, p.Timeout)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Result{Status: resp.StatusCode, Detail: fmt.Sprintf("HTTP %d, then the body broke off: %s", resp.StatusCode, describe(err, addr, p.Timeout))}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Result{Status: resp.StatusCode, Detail: fmt.Sprintf("HTTP %d from GET %s", resp.StatusCode, url)}
	}
	if p.ExpectBody != "" && !strings.Contains(string(body), p.ExpectBody) {
		return Result{Status: resp.StatusCode, Detail: fmt.Sprintf("HTTP %d but the body does not contain %q: %s", resp.StatusCode, p.ExpectBody, snippet(body))}
	}
	return Result{Passed: true, Status: resp.StatusCode, Detail: fmt.Sprintf("HTTP %d", resp.StatusCode)}
}

// describe turns a transport error into words an operator acts on, without Go's wrapping noise.
func describe(err error, addr string, timeout time.Duration) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connection refused: nothing is listening on %s", addr)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Sprintf("no answer within %s (health.timeout)", timeout)
	case errors.Is(err, context.Canceled):
		return "probe cancelled"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("connection to %s closed before a complete answer", addr)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("cannot resolve %q: %v", dnsErr.Name, dnsErr.Err)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return fmt.Sprintf("%s %s: %v", opErr.Op, addr, opErr.Err)
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// snippet shows the start of a body on one line, so a failed probe says what came back.
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
