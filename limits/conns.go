// Package limits caps what one client can hold of routied: the connections it keeps open
// from one IP address, as nginx's limit_conn does.
package limits

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ConnCap counts the connections each client IP address holds open across the listeners it
// wraps, and refuses a new one from an address that already holds the maximum: the
// connection is accepted and closed at once (with a reset, so neither side keeps it in
// TIME_WAIT), before a TLS handshake or a request is read. One client cannot take every
// connection, file descriptor and buffer routied has, while everyone else is still served.
//
// An address is counted as is: IPv4, or the whole IPv6 address. Behind a load balancer or
// another proxy every client shares its address; turn the cap off there (SetMax(0)).
type ConnCap struct {
	log     *slog.Logger
	max     atomic.Int64  // 0: no cap
	refused atomic.Uint64 // connections refused since the start

	mu   sync.Mutex // guards open
	open map[netip.Addr]client
}

// client is what ConnCap knows of one address with connections open.
type client struct {
	conns  int64
	warned bool // its refusal was logged; logged again only after all its connections closed
}

// NewConnCap returns a ConnCap allowing n connections per client IP address; 0 allows any
// number (connections are still counted, so a later SetMax applies to them).
func NewConnCap(n int, log *slog.Logger) *ConnCap {
	c := &ConnCap{log: log, open: map[netip.Addr]client{}}
	c.SetMax(n)
	return c
}

// SetMax changes the cap to n for connections accepted from now on; connections already open
// stay open. 0 turns the cap off.
func (c *ConnCap) SetMax(n int) { c.max.Store(int64(max(n, 0))) }

// Refused returns the number of connections refused since the ConnCap was made.
func (c *ConnCap) Refused() uint64 { return c.refused.Load() }

// Wrap returns l with the cap applied to the connections it accepts. Closing the returned
// listener closes l.
func (c *ConnCap) Wrap(l net.Listener) net.Listener { return &listener{Listener: l, cap: c} }

// admit counts a new connection from ip, or reports that ip holds the maximum already.
func (c *ConnCap) admit(ip netip.Addr) bool {
	limit := c.max.Load()
	c.mu.Lock()
	cl := c.open[ip]
	if limit > 0 && cl.conns >= limit {
		warn := !cl.warned
		cl.warned = true
		c.open[ip] = cl
		c.mu.Unlock()
		c.refused.Add(1)
		if warn {
			// Once per episode: a client that keeps trying must not flood the log.
			c.log.Warn("client holds limits.max_conns_per_client connections; refusing its new ones until some close",
				"client", ip.String(), "max_conns_per_client", limit)
		}
		return false
	}
	cl.conns++
	c.open[ip] = cl
	c.mu.Unlock()
	return true
}

func (c *ConnCap) release(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.open[ip]
	if cl.conns--; cl.conns <= 0 {
		delete(c.open, ip)
		return
	}
	c.open[ip] = cl
}

type listener struct {
	net.Listener
	cap *ConnCap
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := clientIP(conn.RemoteAddr())
		if !ok {
			return conn, nil // not an IP connection: nothing to count by
		}
		if l.cap.admit(ip) {
			return &countedConn{Conn: conn, cap: l.cap, ip: ip}, nil
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}
}

func clientIP(a net.Addr) (netip.Addr, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip := ta.AddrPort().Addr().Unmap()
		return ip, ip.IsValid()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// countedConn gives its place back once, on the first Close.
type countedConn struct {
	net.Conn
	cap    *ConnCap
	ip     netip.Addr
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.cap.release(c.ip)
	}
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close the connection before closing it after an answer to a
// request whose body it did not read (a 413), so the client reads the answer instead of a
// reset.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
