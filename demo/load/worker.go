package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on distinct keys, so a header that carries request IDs or errors that carry
// ports cannot grow a map without end.
const (
	maxValues = 64
	maxErrors = 16
	otherKey  = "(other)"
	noneKey   = "(none)"
)

// stats is what one worker saw. Fields are totals since the start.
type stats struct {
	requests int64            // answered or failed; interrupted requests are not counted
	failed   int64            // transport errors: no complete response
	non2xx   int64            // complete responses with a status outside 200-299
	status   map[int]int64    // complete responses by status code
	values   map[string]int64 // complete responses by the -by-header value
	errors   map[string]int64 // failures by errKey
	latency  histogram        // every counted request, failed or not
}

func newStats() *stats {
	return &stats{status: map[int]int64{}, values: map[string]int64{}, errors: map[string]int64{}}
}

func (s *stats) merge(o *stats) {
	s.requests += o.requests
	s.failed += o.failed
	s.non2xx += o.non2xx
	for k, v := range o.status {
		s.status[k] += v
	}
	for k, v := range o.values {
		addBounded(s.values, k, v, maxValues)
	}
	for k, v := range o.errors {
		addBounded(s.errors, k, v, maxErrors)
	}
	s.latency.merge(&o.latency)
}

func addBounded(m map[string]int64, k string, v int64, limit int) {
	if _, ok := m[k]; !ok && len(m) >= limit {
		k = otherKey
	}
	m[k] += v
}

// worker sends one request at a time over its own keep-alive connection.
type worker struct {
	client *http.Client
	req    *http.Request
	header string // canonical -by-header name, or ""

	mu    sync.Mutex // guards stats: taken by the worker per request, by the reporter once a second
	stats *stats
}

// newWorker gives the worker its own transport, so -c workers hold -c connections no
// matter how the server answers, and dials counts every connection opened.
func newWorker(ctx context.Context, cfg config, dials *atomic.Int64) (*worker, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil, // never through $HTTP_PROXY: only the -url given is ever contacted
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
		// A non-nil TLSClientConfig also keeps the transport on HTTP/1.1: one request per
		// connection at a time, which is what -c promises.
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: cfg.insecure},
		TLSHandshakeTimeout: 5 * time.Second,
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   cfg.timeout,
		// A redirect is an answer to count, not a place to go.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "routie-demo-load")
	return &worker{client: client, req: req, header: http.CanonicalHeaderKey(cfg.byHeader), stats: newStats()}, nil
}

// run sends requests until the deadline, until issued passes limit (0: no limit), or until
// ctx ends. A request in flight at the deadline is finished and counted; one cut short by
// ctx is not, since it did not fail on the server's account.
func (w *worker) run(ctx context.Context, deadline time.Time, issued *atomic.Int64, limit int64) {
	defer w.client.CloseIdleConnections()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if limit > 0 && issued.Add(1) > limit {
			return
		}
		start := time.Now()
		resp, err := w.client.Do(w.req) // reusing req is allowed once the last body is closed
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		elapsed := time.Since(start)
		if err != nil && ctx.Err() != nil {
			return
		}
		w.record(resp, err, elapsed)
	}
}

func (w *worker) record(resp *http.Response, err error, elapsed time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.requests++
	s.latency.record(elapsed)
	if err != nil {
		s.failed++
		addBounded(s.errors, errKey(err), 1, maxErrors)
		return
	}
	s.status[resp.StatusCode]++
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s.non2xx++
	}
	if w.header != "" {
		v := noneKey
		if vs := resp.Header[w.header]; len(vs) > 0 {
			v = vs[0]
		}
		addBounded(s.values, v, 1, maxValues)
	}
}

// snapshot copies the worker's stats for the progress reporter.
func (w *worker) snapshot(into *stats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	into.requests += w.stats.requests
	into.failed += w.stats.failed
	into.non2xx += w.stats.non2xx
	for k, v := range w.stats.values {
		addBounded(into.values, k, v, maxValues)
	}
}

// errKey names a failure without the details that differ per connection (the local port),
// so that a thousand resets are one line of the report.
func errKey(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Op + ": " + oe.Err.Error()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "connection closed before a complete response (EOF)"
	}
	return err.Error()
}
