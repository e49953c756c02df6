package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/routie/routie/limits"
	"github.com/routie/routie/metrics"
	"github.com/routie/routie/switcher"
	routietls "github.com/routie/routie/tls"
)

// metricsServer serves Prometheus metrics on metrics.listen, apart from the public
// listeners: a scrape is not subject to the client limits, and the address can stay private.
type metricsServer struct {
	srv  *http.Server
	done chan struct{}
}

// startMetrics serves GET /metrics on l until stop. Everything is read from sw, certs and
// conns at each scrape; certs is nil when routied serves no HTTPS, conns nil without a
// connection cap.
func startMetrics(l net.Listener, sw *switcher.Switcher, certs *routietls.Certificates, conns *limits.ConnCap, log *slog.Logger) *metricsServer {
	src := metrics.Sources{Switcher: sw}
	if certs != nil {
		src.Certificates = certs.Status
	}
	if conns != nil {
		src.RefusedConns = conns.Refused
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(src, log))
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 Method Not Allowed: GET /metrics", http.StatusMethodNotAllowed)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 Not Found: routied serves its metrics at GET /metrics", http.StatusNotFound)
	})
	ms := &metricsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			// A scrape is small and quick; a client that holds one open is stuck or hostile.
			WriteTimeout:   time.Minute,
			IdleTimeout:    idleTimeout,
			MaxHeaderBytes: 16 << 10,
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(ms.done)
		if err := ms.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("metrics listener failed; Prometheus cannot scrape routied", "addr", l.Addr().String(), "err", err)
		}
	}()
	return ms
}

// stop closes the listener and waits for scrapes in progress, up to ctx.
func (ms *metricsServer) stop(ctx context.Context) {
	if err := ms.srv.Shutdown(ctx); err != nil {
		ms.srv.Close()
	}
	<-ms.done
}
