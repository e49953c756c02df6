package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// statusClientGone is what the access log shows for a request whose client left before the
// answer (nginx's 499); nothing is sent.
const statusClientGone = 499

// pages are the only bodies routie writes itself: short, plain, and free of internals.
var pages = map[int]string{
	http.StatusBadGateway:     "502 Bad Gateway\n\nThe application behind this server is not answering. Please try again in a moment.\n",
	http.StatusGatewayTimeout: "504 Gateway Timeout\n\nThe application behind this server took too long to answer. Please try again.\n",
}

// serveError is ReverseProxy's one error handler: it decides what the client sees and logs
// the cause for the operator.
func (p *Proxy) serveError(w http.ResponseWriter, r *http.Request, err error) {
	f := flightFrom(r)
	target := ""
	if f != nil {
		target = f.target.addr
	}
	cause := context.Cause(r.Context())
	if f != nil {
		f.failed = true
	}
	limit, isTooLarge := bodyTooLarge(err)
	switch {
	case errors.Is(cause, ErrDrainDeadline):
		p.log.Warn("request cancelled at the drain deadline", "target", target, "method", r.Method, "path", r.URL.Path)
		p.writeError(w, http.StatusGatewayTimeout)
	case errors.Is(cause, ErrStreamGrace):
		p.log.Info("stream closed at the end of its grace window", "target", target, "path", r.URL.Path)
		p.writeError(w, http.StatusGatewayTimeout)
	case isTooLarge:
		// The client's body, not the target, failed the request (limitBody).
		if f != nil {
			f.failed = false
		}
		p.refuseBody(w, r, target, limit)
	case r.Context().Err() != nil:
		// The client went away; there is nobody to answer, and nothing to hold against
		// the target.
		if f != nil {
			f.status = statusClientGone
			f.failed = false
		}
	default:
		p.log.Warn("upstream failed", "target", target, "method", r.Method, "path", r.URL.Path, "err", describe(err))
		p.writeError(w, http.StatusBadGateway)
	}
}

func (p *Proxy) writeError(w http.ResponseWriter, code int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	body := pages[code]
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// describe trims Go's wrapping from a transport error so the log says what broke.
func describe(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil && op.Err != nil {
		return op.Op + " " + op.Addr.String() + ": " + op.Err.Error()
	}
	return err.Error()
}

func (p *Proxy) logAccess(r *http.Request, f *flight) {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", f.status),
		slog.Int64("bytes", f.bytes),
		slog.Duration("duration", time.Since(f.start).Round(time.Microsecond)),
		slog.String("target", f.target.addr),
		slog.String("client", client),
	)
}
