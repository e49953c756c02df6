package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
)

func TestMetricsEndpointServesOnlyMetricsAndStops(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(app.Close)
	log := slog.New(slog.DiscardHandler)
	sw, err := switcher.New(proxy.New(log), health.NewChecker(), switcher.NewStore(t.TempDir()),
		settingsFrom(conf.Default()), app.Listener.Addr().String(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	ms := startMetrics(l, sw, nil, nil, log)

	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/metrics", http.StatusOK, `routie_target_role{role="active",target="` + app.Listener.Addr().String() + `"} 1`},
		{"HEAD", "/metrics", http.StatusOK, ""},
		{"GET", "/", http.StatusNotFound, "routied serves its metrics at GET /metrics"},
		{"POST", "/metrics", http.StatusMethodNotAllowed, ""},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
			t.Errorf("%s %s: %d, want %d with %q in:\n%.300s", tc.method, tc.path, resp.StatusCode, tc.status, tc.body, b)
		}
	}
	http.DefaultClient.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ms.stop(ctx)
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Error("the metrics address still accepts connections after stop")
	}
}

func TestConnectionCapIsSharedByTheHTTPAndHTTPSListeners(t *testing.T) {
	var httpLn, httpsLn, off net.Listener
	for _, l := range []*net.Listener{&httpLn, &httpsLn} {
		var err error
		if *l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	limits := conf.Default().Limits
	limits.MaxConnsPerClient = 2
	cc := capConns(limits, slog.New(slog.DiscardHandler), &httpLn, &httpsLn, &off)
	if off != nil {
		t.Fatal("capConns made a listener out of a nil one")
	}
	for _, l := range []net.Listener{httpLn, httpsLn} {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}

	served := func(addr string) bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: routie.test\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		return err == nil && resp.StatusCode == http.StatusOK
	}
	if !served(httpLn.Addr().String()) || !served(httpsLn.Addr().String()) {
		t.Fatal("the first connection on each listener was not served")
	}
	if served(httpsLn.Addr().String()) || served(httpLn.Addr().String()) {
		t.Error("a third connection from one client was served across the two listeners with a cap of 2")
	}
	if cc.Refused() != 2 {
		t.Errorf("Refused() = %d, want 2", cc.Refused())
	}
}

func TestServerLimitsComeFromTheConfig(t *testing.T) {
	l := conf.Limits{HeaderTimeout: 3 * time.Second, IdleTimeout: 42 * time.Second}
	srv := applyServerLimits(newServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler), nil), l)
	if srv.ReadHeaderTimeout != l.HeaderTimeout || srv.IdleTimeout != l.IdleTimeout {
		t.Errorf("ReadHeaderTimeout %s, IdleTimeout %s; want %s, %s", srv.ReadHeaderTimeout, srv.IdleTimeout, l.HeaderTimeout, l.IdleTimeout)
	}
	if srv.MaxHeaderBytes != maxHeaderBytes {
		t.Errorf("MaxHeaderBytes %d changed; want %d", srv.MaxHeaderBytes, maxHeaderBytes)
	}
}
