// Package proxy forwards client requests to the active target and counts the work in flight
// on every target, so that a switch is one atomic step and retiring a target can wait for
// exactly the requests it still serves.
package proxy

import (
	"context"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
)

// Proxy is the http.Handler that serves every client request. The zero value is not usable;
// call New.
type Proxy struct {
	log     *slog.Logger
	route   atomic.Pointer[route]
	access  atomic.Bool
	maxBody atomic.Int64 // limits.max_body in bytes; 0 is no limit
	buffers *bufferPool
	seed    maphash.Seed // hashes the cookies of a client that has no canary ticket yet
}

// route is what the hot path reads. It is replaced whole, never modified, so one atomic load
// gives a consistent view.
type route struct {
	active *Target
	// canary, when not nil, takes share (per ShareScale) of the clients; salt picks which
	// (canary.go).
	canary      *Target
	share, salt uint32
}

// New returns a Proxy that serves 502 until SetActive is called. It logs upstream failures to
// log and, when access logging is on, one line per request.
func New(log *slog.Logger) *Proxy {
	p := &Proxy{log: log, buffers: &bufferPool{}, seed: maphash.MakeSeed()}
	p.access.Store(true)
	return p
}

// SetAccessLog turns the per-request access line on or off.
func (p *Proxy) SetAccessLog(on bool) { p.access.Store(on) }

// NewTarget returns a Target for addr ("host:port") with its own connection pool. It receives
// no traffic until it is made active.
func (p *Proxy) NewTarget(addr string) (*Target, error) {
	u, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	t := &Target{
		addr:         addr,
		requestsIdle: make(chan struct{}, 1),
		streamsIdle:  make(chan struct{}, 1),
	}
	t.gen.Store(newGeneration())
	pool, transport := newUpstream(t)
	t.pool = pool
	t.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.SetXForwarded()
			// Keep the Host the client asked for, as `proxy_set_header Host $host` does in
			// nginx: apps build redirects and links from it.
			r.Out.Host = r.In.Host
		},
		Transport:      transport,
		BufferPool:     p.buffers,
		ErrorHandler:   p.serveError,
		ModifyResponse: markEventStream,
		// FlushInterval stays 0: responses are flushed as the app flushes them (event
		// streams are detected and flushed at once), and a timer per response costs throughput.
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	return t, nil
}

// SetActive makes t receive every request that arrives from now on, and ends a canary if one
// was set (SetActive(canary) promotes it). Requests already admitted to the previous target
// finish there.
func (p *Proxy) SetActive(t *Target) {
	t.Prepare()
	p.route.Store(&route{active: t})
}

// Active returns the target that receives new requests, or nil before SetActive.
func (p *Proxy) Active() *Target {
	if r := p.route.Load(); r != nil {
		return r.active
	}
	return nil
}

// admit picks the target for a request, the active one or the canary, and counts the request
// in flight on it. The count is taken before the route is checked a second time: if a
// switch, a promotion or the end of a canary happened in between, the request lets go and
// picks again. So a drain that starts after the change sees every request the old target
// will ever serve, without a lock on the hot path. pin is set when the answer must give the
// client its canary ticket.
func (p *Proxy) admit(req *http.Request) (t *Target, tk ticket, pin bool) {
	read := false
	for {
		r := p.route.Load()
		if r == nil {
			return nil, tk, false
		}
		t = r.active
		if r.canary != nil { // without a canary, this nil check is all the split costs
			if !read {
				tk, read = p.readTicket(req), true
			}
			if r.takes(tk.n) {
				t = r.canary
			}
		}
		t.inflight.Add(1)
		if p.route.Load() == r {
			return t, tk, r.canary != nil && tk.fresh
		}
		t.releaseRequest()
	}
}

type flightKey struct{}

// ServeHTTP forwards r to the active target, or to the canary if r's client is on its side.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, tk, pin := p.admit(r)
	if t == nil {
		p.writeError(w, http.StatusBadGateway)
		return
	}
	f := startFlight(w, t)
	if pin {
		f.pin, f.ticket, f.secure = true, tk.n, r.TLS != nil
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	f.cancel = cancel
	f.watchRequests()
	ctx = context.WithValue(ctx, flightKey{}, f)
	defer func() {
		// Runs even when ReverseProxy aborts a broken response with a panic, so the
		// target's counts always come back down.
		f.finish()
		if p.access.Load() {
			p.logAccess(r, f)
		}
	}()
	if shortPath(r) {
		p.serveShort(f, r, ctx)
		return
	}
	if !p.limitBody(f, w, r) {
		return
	}
	if r.ContentLength != 0 {
		// Let the upstream's Transport read the body to its end while the response is
		// written. Without this, net/http's HTTP/1 server closes the body once the answer
		// starts: an upstream that answered as soon as it had read every byte of a POST
		// leaves the Transport a last Read (the one that returns EOF) that fails, and the
		// Transport then closes the connection under the response, truncating it
		// (golang/go#40747).
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	t.rp.ServeHTTP(f, r.WithContext(ctx))
}

func flightFrom(r *http.Request) *flight {
	f, _ := r.Context().Value(flightKey{}).(*flight)
	return f
}

// markEventStream moves a server-sent-events response from the target's requests to its
// streams: a drain should not wait drain.timeout for an event stream that never ends.
func markEventStream(resp *http.Response) error {
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if f := flightFrom(resp.Request); f != nil {
			f.becomeStream()
		}
	}
	return nil
}

const bufferSize = 32 << 10

// bufferPool recycles the copy buffers of ReverseProxy; without it every response allocates
// 32 KiB and the garbage collector eats a fifth of the CPU under load.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, bufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != bufferSize {
		return
	}
	b.pool.Put(&buf)
}
