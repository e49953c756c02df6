package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// connTracker counts a server's open client connections, so a stop can wait until the last
// one is gone. http.Server.Shutdown would do that too, but it drops a request that arrives on
// a connection it accepted an instant before: between an upgrade's two processes that is a
// failed request. draining instead stops accepting, turns keep-alive off (each connection
// closes after its current response) and waits.
type connTracker struct {
	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
	empty chan struct{} // closed while conns is empty after wait began; nil otherwise
}

func newConnTracker() *connTracker { return &connTracker{conns: map[net.Conn]struct{}{}} }

// track is the server's ConnState hook.
func (t *connTracker) track(c net.Conn, state http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch state {
	case http.StateNew:
		t.conns[c] = struct{}{}
	case http.StateHijacked, http.StateClosed:
		delete(t.conns, c)
		if len(t.conns) == 0 && t.empty != nil {
			select {
			case <-t.empty:
			default:
				close(t.empty)
			}
		}
	}
}

// wait returns once no connection is open, or when ctx ends.
func (t *connTracker) wait(ctx context.Context) bool {
	t.mu.Lock()
	if len(t.conns) == 0 {
		t.mu.Unlock()
		return true
	}
	if t.empty == nil {
		t.empty = make(chan struct{})
	}
	empty := t.empty
	t.mu.Unlock()
	select {
	case <-empty:
		return true
	case <-ctx.Done():
		return false
	}
}

// drainingServer is an http.Server with the listener it serves and its connections tracked.
type drainingServer struct {
	srv   *http.Server
	ln    net.Listener
	conns *connTracker
}

func newDrainingServer(srv *http.Server, ln net.Listener) *drainingServer {
	d := &drainingServer{srv: srv, ln: ln, conns: newConnTracker()}
	srv.ConnState = d.conns.track
	return d
}

// drain stops accepting, lets each connection finish its current request and close, and
// returns when none is left or ctx ends; then it closes what remains. Hijacked connections
// (WebSockets) are not its business: the proxy's targets own them.
func (d *drainingServer) drain(ctx context.Context) (clean bool) {
	d.ln.Close()
	// Keep-alive off: busy connections close after their response, idle ones close now.
	d.srv.SetKeepAlivesEnabled(false)
	waited := make(chan bool, 1)
	go func() { waited <- d.conns.wait(ctx) }()
	// Repeating it closes connections that were accepted but sent nothing for 5 s (net/http
	// counts those as idle only then), instead of waiting for the read-header timeout.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case clean = <-waited:
			d.srv.Close()
			return clean
		case <-tick.C:
			d.srv.SetKeepAlivesEnabled(false)
		}
	}
}
