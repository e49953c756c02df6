package main

import (
	"log/slog"
	"net"
	"net/http"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/limits"
)

// capConns puts the public listeners behind one limits.max_conns_per_client cap, shared so
// that a client's connections on the HTTP and HTTPS ports count together: each non-nil
// *listener is replaced by its capped wrapper (closing the wrapper closes the listener).
// Call it before the listeners are served. The cap follows SetMax on reload.
func capConns(c conf.Limits, log *slog.Logger, listeners ...*net.Listener) *limits.ConnCap {
	cc := limits.NewConnCap(c.MaxConnsPerClient, log)
	for _, l := range listeners {
		if *l != nil {
			*l = cc.Wrap(*l)
		}
	}
	return cc
}

// applyServerLimits sets limits.header_timeout and limits.idle_timeout on srv. Call it before
// srv serves: net/http reads these fields without a lock, so they change only on restart.
func applyServerLimits(srv *http.Server, c conf.Limits) *http.Server {
	srv.ReadHeaderTimeout = c.HeaderTimeout
	srv.IdleTimeout = c.IdleTimeout
	return srv
}
