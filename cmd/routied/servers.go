package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Server limits, so a slow or hostile client cannot pin a goroutine and its buffers for long.
// There is no read or write timeout on the whole request: uploads, downloads, event streams
// and WebSockets may run as long as they need, and a retired target bounds them with
// drain.timeout and drain.streams.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 75 * time.Second // nginx's keepalive_timeout
	maxHeaderBytes    = 64 << 10
)

// newServer returns an http.Server with routied's limits.
func newServer(h http.Handler, log *slog.Logger, tlsConfig *tls.Config) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// Go advertises a 1 MiB frame size by default and so accepts frames a conformant
		// peer must refuse; 16 KiB is the protocol's default.
		HTTP2: &http.HTTP2Config{MaxReadFrameSize: 16 << 10},
	}
	return srv
}

// redirectToHTTPS answers plain-HTTP requests with a 308 to the same path and query over
// HTTPS. httpsAddr is the HTTPS listen address, so a non-standard port (":8443") is kept.
func redirectToHTTPS(httpsAddr string) http.Handler {
	_, port, _ := net.SplitHostPort(httpsAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") { // IPv6 literal
			host = "[" + host + "]"
		}
		if host == "" || host == "[]" {
			http.Error(w, "400 Bad Request: a Host header is needed to redirect to HTTPS", http.StatusBadRequest)
			return
		}
		if port != "" && port != "443" {
			host += ":" + port
		}
		target := "https://" + host + r.URL.RequestURI()
		w.Header().Set("Location", target)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusPermanentRedirect)
		_, _ = w.Write([]byte("308 Permanent Redirect: " + target + "\n"))
	})
}

// serve runs srv on l until it is shut down; a failure other than shutdown is returned.
func serve(srv *http.Server, l net.Listener, useTLS bool) error {
	var err error
	if useTLS {
		err = srv.ServeTLS(l, "", "")
	} else {
		err = srv.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// shutdown stops srv accepting and waits for its in-flight requests, up to ctx.
func shutdown(ctx context.Context, srv *http.Server) error {
	return srv.Shutdown(ctx)
}
