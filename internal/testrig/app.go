package testrig

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// App stands in for the Spring Boot app behind routie: a real HTTP server on 127.0.0.1. It
// answers
//
//   - GET /actuator/health with the status SetHealth chose (200 to start) and a body of
//     {"status":"UP"} or {"status":"DOWN"}; with HoldProbes, each probe first waits for the
//     test to answer it (NextProbe);
//   - GET /hold once the test calls Release, after Held has received a value for it;
//   - GET /ws by echoing each WebSocket message back prefixed with "name: ";
//   - GET /events with an event stream that stays open until the client goes;
//   - GET /missing with 404;
//   - any other request with "hello from name", after Delay, and 500 for every FailEach-th.
//
// Every answer but the health probe's carries the header X-App: name when name is not empty.
type App struct {
	name string
	srv  *httptest.Server

	health atomic.Int32 // the status GET /actuator/health answers
	probed atomic.Int32 // health probes that reached the app
	// probes, when not nil, holds each health probe until the test closes the channel it sends.
	probes chan chan struct{}

	// held receives a value for each request that reaches GET /hold; they wait for release.
	held        chan struct{}
	release     chan struct{}
	releaseOnce sync.Once

	failEach atomic.Int64  // every failEach-th request to / answers 500; 0: none
	delay    time.Duration // added to every request to /
	served   atomic.Int64  // requests to /
}

// AppOption changes how an App answers.
type AppOption func(*App)

// HoldProbes makes each health probe wait for the test to answer it (see NextProbe), so that
// a test can see what happened before the switcher's next probe.
func HoldProbes() AppOption { return func(a *App) { a.probes = make(chan chan struct{}) } }

// FailEach makes every nth request to / answer 500.
func FailEach(n int) AppOption { return func(a *App) { a.failEach.Store(int64(n)) } }

// Delay makes every request to / take d longer.
func Delay(d time.Duration) AppOption { return func(a *App) { a.delay = d } }

// StartApp starts an app called name (it may be empty) whose health probes pass. It closes
// when the test ends.
func StartApp(t testing.TB, name string, opts ...AppOption) *App {
	t.Helper()
	a := &App{name: name, held: make(chan struct{}, 16), release: make(chan struct{})}
	for _, o := range opts {
		o(a)
	}
	a.health.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /actuator/health", a.serveHealth)
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, r *http.Request) {
		a.held <- struct{}{}
		select {
		case <-a.release:
		case <-r.Context().Done():
			return
		}
		a.sign(w)
		fmt.Fprintf(w, "held by %s\n", name)
	})
	mux.HandleFunc("GET /ws", a.serveWebSocket)
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		a.sign(w)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": connected\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("GET /missing", http.NotFound)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(a.delay)
		a.sign(w)
		if n, each := a.served.Add(1), a.failEach.Load(); each > 0 && n%each == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
		fmt.Fprintf(w, "hello from %s\n", name)
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *App) serveHealth(w http.ResponseWriter, r *http.Request) {
	a.probed.Add(1)
	if a.probes != nil {
		answer := make(chan struct{})
		select {
		case a.probes <- answer:
		case <-r.Context().Done():
			return
		}
		select {
		case <-answer:
		case <-r.Context().Done():
			return
		}
	}
	code := int(a.health.Load())
	w.WriteHeader(code)
	if code/100 == 2 {
		fmt.Fprint(w, `{"status":"UP"}`)
	} else {
		fmt.Fprint(w, `{"status":"DOWN"}`)
	}
}

func (a *App) serveWebSocket(w http.ResponseWriter, r *http.Request) {
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
		if err := c.Write(r.Context(), typ, append([]byte(a.name+": "), msg...)); err != nil {
			return
		}
	}
}

// sign sets the X-App header when the app has a name.
func (a *App) sign(w http.ResponseWriter) {
	if a.name != "" {
		w.Header().Set("X-App", a.name)
	}
}

// Name is the name the app was started with.
func (a *App) Name() string { return a.name }

// Addr is the app's "127.0.0.1:port".
func (a *App) Addr() string { return a.srv.Listener.Addr().String() }

// Port is the app's port alone, as an operator writes a target.
func (a *App) Port() string {
	_, port, _ := net.SplitHostPort(a.Addr())
	return port
}

// Served is how many requests have reached / (every path but those above).
func (a *App) Served() int64 { return a.served.Load() }

// SetHealth sets the status that GET /actuator/health answers from now on.
func (a *App) SetHealth(code int) { a.health.Store(int32(code)) }

// SetFailEach makes every n-th request to / answer 500 from now on (0: none), as a release
// that goes bad under real traffic would.
func (a *App) SetFailEach(n int) { a.failEach.Store(int64(n)) }

// Probed is how many health probes have reached the app.
func (a *App) Probed() int32 { return a.probed.Load() }

// NextProbe waits for a health probe to reach a, an app started with HoldProbes, and returns
// the channel that answers it when closed.
func (a *App) NextProbe(t testing.TB) chan<- struct{} {
	t.Helper()
	return Recv(t, a.probes, "a health probe of "+a.Addr())
}

// Held receives a value each time a request reaches GET /hold.
func (a *App) Held() <-chan struct{} { return a.held }

// Release answers every request held on /hold, now and later.
func (a *App) Release() { a.releaseOnce.Do(func() { close(a.release) }) }

// Close stops the app now, as a crash would, rather than when the test ends.
func (a *App) Close() { a.srv.Close() }
