package main

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
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

// withHSTS adds "Strict-Transport-Security: max-age=N" to h's answers that do not carry the
// header already (the app's own choice, such as includeSubDomains, wins). N is read from
// maxAge, in seconds, on each request, so tls.hsts applies live; 0 adds nothing and costs
// nothing.
func withHSTS(h http.Handler, maxAge *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := maxAge.Load(); n > 0 {
			w = &hstsWriter{ResponseWriter: w, value: "max-age=" + strconv.FormatInt(n, 10)}
		}
		h.ServeHTTP(w, r)
	})
}

// hstsWriter sets the header when the final status is written. Unwrap lets the proxy's
// http.ResponseController reach the connection for flushes and WebSocket upgrades.
type hstsWriter struct {
	http.ResponseWriter
	value   string
	written bool
}

func (w *hstsWriter) WriteHeader(code int) {
	if !w.written && code >= 200 { // a 1xx (100 Continue, 103 Early Hints) is not the answer
		w.written = true
		if h := w.Header(); h.Get("Strict-Transport-Security") == "" {
			h.Set("Strict-Transport-Security", w.value)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *hstsWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *hstsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serve runs srv on l until it is shut down; a failure other than shutdown is returned.
func serve(srv *http.Server, l net.Listener, useTLS bool) error {
	var err error
	if useTLS {
		err = srv.ServeTLS(l, "", "")
	} else {
		err = srv.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		// Shut down, or drained: the listener was closed on purpose.
		return nil
	}
	return err
}
