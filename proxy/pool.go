package proxy

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"
)

// connPool holds the upstream connections of the short path (short.go): plain persistent
// HTTP/1.1 connections with their buffers, and no goroutine of their own, unlike
// http.Transport's two per connection.
//
// It follows http.Transport's rules where they matter for draining: CloseIdle closes the idle
// connections and makes connections that become idle later close too, until the next request;
// the short path pools a connection only after its response body was read to the end.
type connPool struct {
	dial    func(ctx context.Context) (net.Conn, error)
	maxIdle int
	idleFor time.Duration

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

// get returns an idle connection, or a new one.
func (t *connPool) get(ctx context.Context) (pc *pconn, reused bool, err error) {
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

func (t *connPool) put(pc *pconn) {
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
func (t *connPool) reap() {
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

// CloseIdleConnections closes every idle connection and makes connections close as they
// become idle until the next request.
func (t *connPool) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.closeIdle = true
	t.mu.Unlock()
	for _, pc := range idle {
		pc.conn.Close()
	}
}
