package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// fastTransport sends bodiless GET and HEAD requests over its own pool of HTTP/1.1
// connections, and everything else (bodies, Expect, protocol upgrades, trailers) through
// http.Transport. The short path writes the request straight to a buffered connection and
// reads the answer with http.ReadResponse: no background goroutines per connection and about
// a quarter fewer allocations per request, which on a 2-core host is most of the difference
// between a Go proxy and nginx.
//
// Its pool follows http.Transport's rules where they matter for draining: CloseIdle closes
// the idle connections and makes connections that become idle later close too, until the next
// request; a connection is reused only after its response body was read to the end.
type fastTransport struct {
	dial     func(ctx context.Context) (net.Conn, error)
	fallback *http.Transport
	maxIdle  int
	idleFor  time.Duration

	mu        sync.Mutex // guards the fields below
	idle      []*pconn   // most recently used last
	closeIdle bool
	reaping   bool
}

// pconn is one persistent connection to the upstream.
type pconn struct {
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !shortPath(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		pc, reused, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := t.send(ctx, pc, req)
		if err == nil {
			return resp, nil
		}
		pc.conn.Close()
		// A pooled connection the upstream closed while it was idle fails on first use; GET
		// and HEAD are safe to send again, once, on a new connection.
		if reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// shortPath reports whether req can take the short path: an idempotent request without a
// body that asks for nothing but a plain HTTP/1.1 exchange.
func shortPath(req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody || req.ContentLength > 0 || len(req.Trailer) > 0 {
		return false
	}
	if req.URL.Scheme != "http" || req.Close {
		return false
	}
	h := req.Header
	return h.Get("Upgrade") == "" && h.Get("Expect") == "" && len(req.TransferEncoding) == 0
}

// get returns an idle connection, or a new one.
func (t *fastTransport) get(ctx context.Context) (pc *pconn, reused bool, err error) {
	t.mu.Lock()
	t.closeIdle = false // in use again: stop closing connections as they become idle
	for n := len(t.idle); n > 0; n = len(t.idle) {
		pc = t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		if time.Since(pc.idleAt) < t.idleFor {
			t.mu.Unlock()
			return pc, true, nil
		}
		pc.conn.Close()
	}
	t.mu.Unlock()
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, false, err
	}
	return &pconn{conn: conn, br: bufio.NewReaderSize(conn, 4<<10), bw: bufio.NewWriterSize(conn, 4<<10)}, false, nil
}

// send writes req on pc and reads the response head. The body is read by the caller through
// fastBody, which returns pc to the pool when it ends cleanly.
func (t *fastTransport) send(ctx context.Context, pc *pconn, req *http.Request) (*http.Response, error) {
	// Cancelling the request (client gone, drain deadline) unblocks whatever pc is doing.
	stop := context.AfterFunc(ctx, func() { pc.conn.SetDeadline(aLongTimeAgo) })
	if err := req.Write(pc.bw); err != nil {
		stop()
		return nil, err
	}
	if err := pc.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(pc.br, req)
		if err != nil {
			stop()
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, err
		}
		// Skip informational answers (103 Early Hints); the final one follows.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		resp.Body = &fastBody{body: resp.Body, t: t, pc: pc, stop: stop, reusable: !resp.Close, empty: resp.Body == http.NoBody}
		return resp, nil
	}
}

// fastBody returns its connection to the pool once the body was read to the end, and closes
// it on any other ending: a connection with unread bytes can't carry the next request.
type fastBody struct {
	body     io.ReadCloser
	t        *fastTransport
	pc       *pconn
	stop     func() bool
	reusable bool
	empty    bool // nothing to read (HEAD, 204, 304, Content-Length: 0)
	done     bool
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err != nil {
		b.finish(errors.Is(err, io.EOF))
	}
	return n, err
}

func (b *fastBody) Close() error {
	if !b.done {
		b.finish(b.empty)
	}
	return nil
}

// finish settles the connection once: pooled after a clean end, else closed.
func (b *fastBody) finish(clean bool) {
	b.done = true
	// stop reports false when the cancellation already fired and poisoned the deadline.
	if b.stop() && clean && b.reusable {
		b.t.put(b.pc)
		return
	}
	b.pc.conn.Close()
}

func (t *fastTransport) put(pc *pconn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closeIdle || len(t.idle) >= t.maxIdle {
		pc.conn.Close()
		return
	}
	pc.idleAt = time.Now()
	t.idle = append(t.idle, pc)
	if !t.reaping {
		t.reaping = true
		time.AfterFunc(t.idleFor, t.reap)
	}
}

// reap closes connections idle longer than idleFor, so a quiet target keeps no sockets the
// upstream is about to close.
func (t *fastTransport) reap() {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := t.idle[:0]
	for _, pc := range t.idle {
		if time.Since(pc.idleAt) >= t.idleFor {
			pc.conn.Close()
			continue
		}
		keep = append(keep, pc)
	}
	clear(t.idle[len(keep):])
	t.idle = keep
	if len(t.idle) > 0 {
		time.AfterFunc(t.idleFor/2, t.reap)
	} else {
		t.reaping = false
	}
}

// CloseIdleConnections closes every idle connection, of the short path and of the fallback,
// and makes connections close as they become idle until the next request.
func (t *fastTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.closeIdle = true
	t.mu.Unlock()
	for _, pc := range idle {
		pc.conn.Close()
	}
	t.fallback.CloseIdleConnections()
}
