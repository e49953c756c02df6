package control

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// NewServer returns the http.Server for the control API on sw (and opts, see NewHandler);
// serve it on a listener from
// Listen, and stop it with Shutdown. It records each connection's peer credentials so that
// every switch and rollback is logged with the uid and pid that asked. It has no write
// timeout: a switch streams its progress for as long as its health gate runs (health.wait,
// 120s by default). The request's context ends when the client hangs up, which aborts a
// health gate still running.
func NewServer(sw Switcher, log *slog.Logger, opts ...Option) *http.Server {
	return &http.Server{
		Handler:           NewHandler(sw, log, opts...),
		ConnContext:       withPeer,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// peer is the process on the other end of a control connection.
type peer struct {
	uid, pid int
}

type peerKey struct{}

// withPeer is http.Server.ConnContext: it reads SO_PEERCRED once per connection.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	p, err := peerCred(uc)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// peerAttrs are the log attributes naming who asked: uid, pid and the process's command name.
func peerAttrs(ctx context.Context) []any {
	p, ok := ctx.Value(peerKey{}).(peer)
	if !ok {
		return []any{"peer", "unknown"}
	}
	attrs := []any{"uid", p.uid, "pid", p.pid}
	if cmd := commandName(p.pid); cmd != "" {
		attrs = append(attrs, "cmd", cmd)
	}
	return attrs
}
