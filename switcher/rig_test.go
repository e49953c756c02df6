package switcher_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
)

// app is a stand-in for the Spring Boot app: a real HTTP server on 127.0.0.1 that answers
// health probes, says its name, holds requests on /hold until told, and echoes WebSockets.
type app struct {
	name    string
	srv     *httptest.Server
	healthy atomic.Int32 // the status code /actuator/health answers
	held    chan struct{}
	release chan struct{}
}

func startApp(t *testing.T, name string) *app {
	t.Helper()
	a := &app{name: name, held: make(chan struct{}, 16), release: make(chan struct{})}
	a.healthy.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /actuator/health", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(a.healthy.Load()))
		fmt.Fprint(w, `{"status":"UP"}`)
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", name)
		fmt.Fprintf(w, "hello from %s\n", name)
	})
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, r *http.Request) {
		a.held <- struct{}{}
		select {
		case <-a.release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("X-App", name)
		fmt.Fprintf(w, "held by %s\n", name)
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte(name+": "), msg...)); err != nil {
				return
			}
		}
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) addr() string { return a.srv.Listener.Addr().String() }

// rig is routied's core on real sockets: a proxy in front of the apps and its switcher.
type rig struct {
	proxy *proxy.Proxy
	sw    *switcher.Switcher
	front *httptest.Server
	store *switcher.Store
	log   *slog.Logger
}

func fastSettings() switcher.Settings {
	return switcher.Settings{
		Host:         "127.0.0.1",
		Probe:        health.Probe{Path: "/actuator/health", Timeout: time.Second},
		Interval:     10 * time.Millisecond,
		Passes:       2,
		Wait:         2 * time.Second,
		DrainTimeout: 10 * time.Second,
		StreamGrace:  10 * time.Second,
	}
}

func newRig(t *testing.T, initial string, st switcher.Settings) *rig {
	t.Helper()
	return newRigWithStore(t, initial, st, switcher.NewStore(t.TempDir()))
}

func newRigWithStore(t *testing.T, initial string, st switcher.Settings, store *switcher.Store) *rig {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := proxy.New(log)
	p.SetAccessLog(false)
	sw, err := switcher.New(p, health.NewChecker(), store, st, initial, log)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(func() {
		front.Close()
		sw.Close()
	})
	return &rig{proxy: p, sw: sw, front: front, store: store, log: log}
}

// get fetches path through the proxy and returns the status and the X-App header.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-App")
}

// deadPort returns a 127.0.0.1 address where nothing listens: a listener opened and closed.
func deadPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func switchTo(t *testing.T, sw *switcher.Switcher, target string) switcher.Report {
	t.Helper()
	rep, err := sw.Switch(context.Background(), target, switcher.SwitchOptions{})
	if err != nil {
		t.Fatalf("switch to %s: %v", target, err)
	}
	return rep
}
