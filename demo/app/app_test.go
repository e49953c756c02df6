package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testConfig is the command line's defaults with a short grace.
func testConfig(t *testing.T, args ...string) config {
	t.Helper()
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(%q): %v", args, err)
	}
	return cfg
}

// startApp serves the app's routes on a 127.0.0.1:0 listener and returns its base URL.
// now is the app's clock; nil means time.Now.
func startApp(t *testing.T, cfg config, now func() time.Time) string {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	ts := httptest.NewUnstartedServer(nil)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	ts.Config.Handler = newApp(cfg, port, make(chan struct{}), now).routes()
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

// get fetches url and returns the status, the X-App header and the body.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("X-App"), string(body)
}

func TestHealthAnswersLikeSpringActuator(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantBody string
	}{
		{"healthy app is UP", nil, 200, `{"status":"UP"}`},
		{"unhealthy app is DOWN", []string{"-unhealthy"}, 503, `{"status":"DOWN"}`},
		{"app still starting is DOWN", []string{"-startup", "1h"}, 503, `{"status":"DOWN"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := startApp(t, testConfig(t, tt.args...), nil)
			code, _, body := get(t, url+"/actuator/health")
			if code != tt.wantCode || body != tt.wantBody {
				t.Errorf("health = %d %s; want %d %s", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestHealthTurnsUpOnceStartupHasPassed(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var elapsed atomic.Int64 // nanoseconds since start on the app's clock
	now := func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	url := startApp(t, testConfig(t, "-startup", "30s"), now) + "/actuator/health"

	for _, step := range []struct {
		at   time.Duration
		want int
	}{{0, 503}, {29 * time.Second, 503}, {30 * time.Second, 200}, {time.Hour, 200}} {
		elapsed.Store(int64(step.at))
		if code, _, body := get(t, url); code != step.want {
			t.Errorf("health %v after start = %d %s; want %d", step.at, code, body, step.want)
		}
	}
}

func TestRootSaysHelloWithNameAndPort(t *testing.T) {
	url := startApp(t, testConfig(t, "-name", "green"), nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://"))

	code, app, body := get(t, url+"/")
	if want := "hello from green (" + port + ")\n"; code != 200 || app != "green" || body != want {
		t.Errorf("GET / = %d X-App %q %q; want 200 X-App \"green\" %q", code, app, body, want)
	}
}

func TestFailRateOneAnswersEveryRequestWith500(t *testing.T) {
	url := startApp(t, testConfig(t, "-fail-rate", "1"), nil)
	for range 3 {
		if code, app, body := get(t, url+"/"); code != 500 || app != "blue" {
			t.Fatalf("GET / = %d X-App %q %q; want 500 from blue", code, app, body)
		}
	}
	if code, _, _ := get(t, url+"/actuator/health"); code != 200 {
		t.Errorf("health = %d; want 200: -fail-rate is for / only", code)
	}
}

func TestEventsAreFlushedOneByOne(t *testing.T) {
	url := startApp(t, testConfig(t), nil)
	// The second event is ten minutes away, so the first can only arrive if it was flushed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events?n=2&every=10m", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q; want text/event-stream", ct)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: blue 1\n" {
		t.Errorf("first line = %q, %v; want \"data: blue 1\\n\" before the second is due", line, err)
	}
}

func TestEventsStreamEndsAfterN(t *testing.T) {
	url := startApp(t, testConfig(t), nil)
	code, _, body := get(t, url+"/events?n=3&every=1ms")
	if want := "data: blue 1\n\ndata: blue 2\n\ndata: blue 3\n\n"; code != 200 || body != want {
		t.Errorf("GET /events = %d %q; want 200 %q", code, body, want)
	}
}

func TestWebSocketEchoesWithNamePrefix(t *testing.T) {
	url := startApp(t, testConfig(t, "-name", "green"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()

	for _, msg := range []string{"hello", "again"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if want := "green: " + msg; typ != websocket.MessageText || string(got) != want {
			t.Errorf("echo = %v %q; want text %q", typ, got, want)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestEchoAnswersWithTheRequestBody(t *testing.T) {
	url := startApp(t, testConfig(t), nil)
	resp, err := http.Post(url+"/echo", "text/plain", strings.NewReader("ping"))
	if err != nil {
		t.Fatalf("POST /echo: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ping" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("POST /echo = %d %q %q; want 200 text/plain \"ping\"",
			resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// startServe runs serve on a 127.0.0.1:0 listener until the returned cancel is called;
// the returned channel yields serve's result once, then is closed.
func startServe(t *testing.T, cfg config) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, ln, cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), cancel, done
}

func TestShutdownClosesWebSocketsAsGoingAway(t *testing.T) {
	url, stop, done := startServe(t, testConfig(t, "-grace", "5s"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()

	stop()
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("read after shutdown = %v (status %v); want close status going away", err, got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("serve did not return after the WebSocket closed")
	}
}

func TestShutdownEndsEndlessEventStreams(t *testing.T) {
	url, stop, done := startServe(t, testConfig(t, "-grace", "5s"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events?n=0&every=10m", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || line != "data: blue 1\n" {
		t.Fatalf("first line = %q, %v; want \"data: blue 1\\n\"", line, err)
	}

	stop()
	if rest, err := io.ReadAll(body); err != nil || string(rest) != "\n" {
		t.Errorf("rest of the stream = %q, %v; want a clean end after the first event", rest, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("serve did not return: shutdown waited on the endless stream")
	}
}

func TestFlagsRejectBadValuesWithAFix(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fail rate above one", []string{"-fail-rate", "1.5"}, "-fail-rate 1.5 is not a share; use 0 to 1"},
		{"port and listen", []string{"-port", "8081", "-listen", ":8081"}, "-listen and -port both given"},
		{"port out of range", []string{"-port", "70000"}, "-port 70000 is not a TCP port"},
		{"empty name", []string{"-name", ""}, "-name is empty"},
		{"stray argument", []string{"green"}, `unexpected argument "green"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseFlags(%q) = %v; want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestPortFlagListensOnLoopback(t *testing.T) {
	cfg, err := parseFlags([]string{"-port", "8081"}, io.Discard)
	if err != nil || cfg.listen != "127.0.0.1:8081" {
		t.Errorf("-port 8081 gives listen %q, %v; want 127.0.0.1:8081", cfg.listen, err)
	}
}

func TestHelpShowsAnExample(t *testing.T) {
	var out strings.Builder
	_, err := parseFlags([]string{"-help"}, &out)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "Example:") {
		t.Errorf("-help = %v, output %q; want flag.ErrHelp and an example", err, out.String())
	}
}

// discardWriter is the least a ResponseWriter can be, so the benchmark measures the app.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

func BenchmarkRoot(b *testing.B) {
	h := newApp(config{name: "blue"}, "8080", make(chan struct{}), time.Now).routes()
	req := httptest.NewRequest("GET", "/", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
