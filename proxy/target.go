package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// ErrDrainDeadline is the cause given to requests cancelled because drain.timeout passed
// while their target was being retired. They are answered with 504.
var ErrDrainDeadline = errors.New("cancelled: the target was retired and drain.timeout passed")

// ErrStreamGrace is the cause given to WebSocket and event streams closed because
// drain.streams passed while their target was being retired.
var ErrStreamGrace = errors.New("closed: the target was retired and drain.streams passed")

// Upstream connection pool sizing. The pool must hold one idle connection per concurrent
// client or every burst dials anew (Go's default of 2 idle per host costs most of the
// throughput); the idle timeout stays below Tomcat's 20 s keep-alive so routie never sends a
// request on a connection the app is about to close.
const (
	maxIdlePerTarget = 512
	upstreamIdle     = 15 * time.Second
	dialTimeout      = 5 * time.Second
)

// Target is one upstream address with its own connection pool and its own count of the work
// in flight on it, so that retiring it can wait for exactly that work.
type Target struct {
	addr string
	pool *connPool              // the short path's connections (short.go)
	rp   *httputil.ReverseProxy // everything else, over its own http.Transport

	// inflight counts HTTP requests being served by this target; streams counts requests that
	// turned into long-lived streams (WebSocket, server-sent events). A request is in exactly
	// one of the two while it runs.
	inflight atomic.Int64
	streams  atomic.Int64
	conns    atomic.Int64 // upstream connections open now
	stats    Stats
	// draining makes the last request out signal requestsIdle/streamsIdle; channels have
	// room for one token so a signal is never lost and never blocks the request path.
	draining     atomic.Bool
	requestsIdle chan struct{}
	streamsIdle  chan struct{}

	gen atomic.Pointer[generation]
}

// generation holds the contexts a drain cancels. Requests register with the generation that
// is current when they are admitted; a drain that passes its deadline cancels them all.
type generation struct {
	requests       context.Context
	cancelRequests context.CancelCauseFunc
	streams        context.Context
	cancelStreams  context.CancelCauseFunc
}

func newGeneration() *generation {
	g := &generation{}
	g.requests, g.cancelRequests = context.WithCancelCause(context.Background())
	g.streams, g.cancelStreams = context.WithCancelCause(context.Background())
	return g
}

func (g *generation) spent() bool { return g.requests.Err() != nil || g.streams.Err() != nil }

// Addr returns the target's "host:port".
func (t *Target) Addr() string { return t.addr }

// String returns the target's address.
func (t *Target) String() string { return t.addr }

// InFlight returns the number of HTTP requests the target is serving now.
func (t *Target) InFlight() int64 { return t.inflight.Load() }

// Streams returns the number of WebSocket connections and event streams open on the target.
func (t *Target) Streams() int64 { return t.streams.Load() }

// Conns returns the number of connections open from routie to the target.
func (t *Target) Conns() int64 { return t.conns.Load() }

// Served returns the number of requests the target has answered or failed since it was made.
func (t *Target) Served() uint64 {
	var n uint64
	for i := range t.stats.classes {
		n += t.stats.classes[i].Load()
	}
	return n
}

// Stats returns the target's answer counters and latency histogram.
func (t *Target) Stats() StatsSnapshot { return t.stats.Snapshot() }

func (t *Target) releaseRequest() {
	if t.inflight.Add(-1) == 0 && t.draining.Load() {
		signal(t.requestsIdle)
	}
}

func (t *Target) releaseStream() {
	if t.streams.Add(-1) == 0 && t.draining.Load() {
		signal(t.streamsIdle)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Prepare readies a target that is about to receive traffic again: it stops counting as
// draining and, if an earlier drain cancelled its requests, gets a fresh generation. Call it
// before the target becomes routable, so no request registers with a cancelled generation.
func (t *Target) Prepare() {
	t.draining.Store(false)
	if t.gen.Load().spent() {
		t.gen.Store(newGeneration())
	}
}

// DrainResult says what a drain waited for.
type DrainResult struct {
	// Waited is the number of HTTP requests in flight when the drain began.
	Waited int64
	// Cancelled is the number of them still running at drain.timeout, cancelled with a 504.
	Cancelled int64
	// Took is how long the drain ran.
	Took time.Duration
	// Aborted is true when ctx ended first: the target became active again.
	Aborted bool
}

// Drain waits until every HTTP request in flight on t has finished, up to timeout; requests
// still running then are cancelled with a 504 and counted. Streams are left alone (see
// DrainStreams). Call it after t stopped receiving new requests; cancel ctx to stop draining
// because t is active again.
func (t *Target) Drain(ctx context.Context, timeout time.Duration) DrainResult {
	start := time.Now()
	t.draining.Store(true)
	res := DrainResult{Waited: t.inflight.Load()}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for t.inflight.Load() > 0 {
		select {
		case <-t.requestsIdle:
		case <-ctx.Done():
			res.Aborted = true
			res.Took = time.Since(start)
			return res
		case <-deadline.C:
			res.Cancelled = t.inflight.Load()
			t.gen.Load().cancelRequests(ErrDrainDeadline)
			t.waitIdle(ctx, &t.inflight, t.requestsIdle)
			res.Took = time.Since(start)
			return res
		}
	}
	res.Took = time.Since(start)
	return res
}

// DrainStreams gives the streams open on t until grace passes, closes the ones left, and then
// closes t's idle upstream connections, so a retired target keeps no sockets. It returns the
// number of streams it closed. Cancel ctx to stop because t is active again.
func (t *Target) DrainStreams(ctx context.Context, grace time.Duration) (closed int64) {
	t.draining.Store(true)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
wait:
	for t.streams.Load() > 0 {
		select {
		case <-t.streamsIdle:
		case <-ctx.Done():
			return 0
		case <-deadline.C:
			closed = t.streams.Load()
			t.gen.Load().cancelStreams(ErrStreamGrace)
			t.waitIdle(ctx, &t.streams, t.streamsIdle)
			break wait
		}
	}
	if ctx.Err() == nil {
		t.CloseIdle()
	}
	return closed
}

// cancelSettle bounds how long a drain waits for cancelled work to unwind.
const cancelSettle = 5 * time.Second

func (t *Target) waitIdle(ctx context.Context, n *atomic.Int64, idle chan struct{}) {
	settle := time.NewTimer(cancelSettle)
	defer settle.Stop()
	for n.Load() > 0 {
		select {
		case <-idle:
		case <-ctx.Done():
			return
		case <-settle.C:
			return
		}
	}
}

// CloseIdle closes t's idle upstream connections, and makes connections that become idle
// later close too until t is used again.
func (t *Target) CloseIdle() {
	t.pool.CloseIdleConnections()
	t.rp.Transport.(*http.Transport).CloseIdleConnections()
}

// Close cancels everything still running on t, streams included, and closes its idle
// connections. It is for shutdown and for a target that is forgotten.
func (t *Target) Close() {
	g := t.gen.Load()
	g.cancelRequests(ErrDrainDeadline)
	g.cancelStreams(ErrStreamGrace)
	t.CloseIdle()
}

// countedConn decrements its target's connection count once, on Close.
type countedConn struct {
	net.Conn
	closed atomic.Bool
	n      *atomic.Int64
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.n.Add(-1)
	}
	return c.Conn.Close()
}

// newUpstream returns t's two ways to reach its address: the short path's pool and the
// http.Transport behind ReverseProxy. Both count the connections they open in t.conns.
func newUpstream(t *Target) (*connPool, *http.Transport) {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		t.conns.Add(1)
		return &countedConn{Conn: c, n: &t.conns}, nil
	}
	pool := &connPool{
		dial:    func(ctx context.Context) (net.Conn, error) { return dial(ctx, "tcp", t.addr) },
		maxIdle: maxIdlePerTarget,
		idleFor: upstreamIdle,
	}
	transport := &http.Transport{
		DialContext:           dial,
		MaxIdleConns:          0, // no global cap; per target below
		MaxIdleConnsPerHost:   maxIdlePerTarget,
		IdleConnTimeout:       upstreamIdle,
		ExpectContinueTimeout: time.Second,
		// Pass the client's Accept-Encoding through untouched; the app decides.
		DisableCompression: true,
		// The upstream side stays HTTP/1.1.
		ForceAttemptHTTP2: false,
	}
	return pool, transport
}

func parseAddr(addr string) (*url.URL, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, err
	}
	return &url.URL{Scheme: "http", Host: addr}, nil
}
