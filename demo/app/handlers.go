package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Bounds on what a request may ask for, so a typo cannot hold the app for a day.
const (
	maxSlow      = 10 * time.Minute
	maxEchoBody  = 8 << 20
	maxEvents    = 1_000_000
	maxWSMessage = 1 << 20
)

// app answers the demo routes. Only echoBufs and streams change after newApp.
type app struct {
	name      string
	failRate  float64
	delay     time.Duration
	unhealthy bool
	readyAt   time.Time        // health answers DOWN before this instant (-startup)
	now       func() time.Time // time.Now; tests move it
	stopping  <-chan struct{}  // closed when shutdown begins; ends event streams and WebSockets

	// Computed once so that GET / allocates nothing of its own. The slices are only ever
	// read by net/http, so every response can share them.
	helloBody []byte
	helloLen  []string
	xApp      []string
	failure   []byte
	wsPrefix  string
	eventHead string

	echoBufs sync.Pool    // *bytes.Buffer for /echo bodies
	streams  atomic.Int64 // running WebSocket handlers, which http.Server.Shutdown does not wait for
}

// Read-only, shared by every response.
var (
	textPlain  = []string{"text/plain; charset=utf-8"}
	appJSON    = []string{"application/json"}
	healthUp   = []byte(`{"status":"UP"}`)
	healthDown = []byte(`{"status":"DOWN"}`)
)

func newApp(cfg config, port string, stopping <-chan struct{}, now func() time.Time) *app {
	hello := []byte(fmt.Sprintf("hello from %s (%s)\n", cfg.name, port))
	return &app{
		name:      cfg.name,
		failRate:  cfg.failRate,
		delay:     cfg.delay,
		unhealthy: cfg.unhealthy,
		readyAt:   now().Add(cfg.startup),
		now:       now,
		stopping:  stopping,
		helloBody: hello,
		helloLen:  []string{strconv.Itoa(len(hello))},
		xApp:      []string{cfg.name},
		failure:   []byte(fmt.Sprintf("%s (%s): injected failure (-fail-rate %v)\n", cfg.name, port, cfg.failRate)),
		wsPrefix:  cfg.name + ": ",
		eventHead: "data: " + cfg.name + " ",
	}
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /actuator/health", a.health)
	mux.HandleFunc("GET /{$}", a.root)
	mux.HandleFunc("GET /slow", a.slow)
	mux.HandleFunc("GET /events", a.events)
	mux.HandleFunc("GET /ws", a.ws)
	mux.HandleFunc("POST /echo", a.echo)
	return mux
}

// health answers like Spring Boot Actuator's /actuator/health.
func (a *app) health(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = appJSON
	h["X-App"] = a.xApp
	if a.unhealthy || a.now().Before(a.readyAt) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(healthDown)
		return
	}
	w.Write(healthUp)
}

func (a *app) root(w http.ResponseWriter, r *http.Request) {
	if !a.sleep(r.Context(), a.delay) {
		return
	}
	h := w.Header()
	h["Content-Type"] = textPlain
	h["X-App"] = a.xApp
	if a.failRate > 0 && rand.Float64() < a.failRate {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(a.failure)
		return
	}
	h["Content-Length"] = a.helloLen
	w.Write(a.helloBody)
}

func (a *app) slow(w http.ResponseWriter, r *http.Request) {
	d, err := durationParam(r, "d", 3*time.Second, maxSlow)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !a.sleep(r.Context(), d) {
		return // the client left; nobody reads an answer
	}
	w.Header()["X-App"] = a.xApp
	fmt.Fprintf(w, "%s slept %v\n", a.name, d)
}

// events streams server-sent events, each flushed on its own so a proxy that buffers
// shows up as a late first event.
func (a *app) events(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "n", 10, maxEvents)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	every, err := durationParam(r, "every", 100*time.Millisecond, maxSlow)
	if err == nil && every < time.Millisecond {
		err = fmt.Errorf("every=%v: want at least 1ms, e.g. every=100ms", every)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h["X-App"] = a.xApp
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return // the client is gone, or the writer cannot stream
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	buf := make([]byte, 0, len(a.eventHead)+16)
	for i := 1; n == 0 || i <= n; i++ {
		if i > 1 {
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			case <-a.stopping:
				return
			}
		}
		buf = append(buf[:0], a.eventHead...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, "\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// ws echoes every message back, prefixed with the app's name, until the client closes or
// the app shuts down (close status 1001 going away).
func (a *app) ws(w http.ResponseWriter, r *http.Request) {
	a.streams.Add(1)
	defer a.streams.Add(-1)
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// A demo on loopback behind a proxy that may rewrite Host: the Origin check would
		// refuse a browser for no benefit.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return // Accept has answered the client
	}
	defer c.CloseNow()
	c.SetReadLimit(maxWSMessage)

	ctx, cancel := context.WithCancel(r.Context())
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		select {
		case <-a.stopping:
			c.Close(websocket.StatusGoingAway, "server shutting down")
		case <-ctx.Done():
		}
	}()
	defer func() { cancel(); <-closed }()

	var buf []byte
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		buf = append(append(buf[:0], a.wsPrefix...), msg...)
		if err := c.Write(ctx, typ, buf); err != nil {
			return
		}
	}
}

// echo answers with the request body. It reads the whole body first: answering while the
// request is still arriving would need full-duplex HTTP/1, which proxies may not support.
func (a *app) echo(w http.ResponseWriter, r *http.Request) {
	if !a.sleep(r.Context(), a.delay) {
		return
	}
	buf, _ := a.echoBufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer a.echoBufs.Put(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxEchoBody)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("body over %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	if ct := r.Header["Content-Type"]; len(ct) > 0 {
		h["Content-Type"] = ct
	} else {
		h["Content-Type"] = []string{"application/octet-stream"}
	}
	h["X-App"] = a.xApp
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// sleep waits d, or less if ctx ends first; it reports whether the whole d passed.
func (a *app) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitStreams waits for WebSocket handlers to finish their close handshakes, or for ctx.
// It polls: a WaitGroup would forbid the Add of a handler that starts as Shutdown gives up.
func (a *app) waitStreams(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for a.streams.Load() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

func durationParam(r *http.Request, key string, def, limit time.Duration) (time.Duration, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > limit {
		return 0, fmt.Errorf("%s=%q: want a duration from 0 to %v, e.g. %s=2s", key, s, limit, key)
	}
	return d, nil
}

func intParam(r *http.Request, key string, def, limit int) (int, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > limit {
		return 0, fmt.Errorf("%s=%q: want a whole number from 0 to %d", key, s, limit)
	}
	return n, nil
}
