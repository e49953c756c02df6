package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/proxy"
)

// front starts the proxy on a real socket with target as the active upstream.
func front(t *testing.T, upstream string) (*httptest.Server, *testrig.LogBuffer) {
	t.Helper()
	logs := &testrig.LogBuffer{}
	srv, _ := newFront(t, upstream, slog.NewJSONHandler(logs, nil), func(*proxy.Proxy) {})
	return srv, logs
}

// newFront starts a proxy on a real socket with upstream as its active target, logging to
// h; configure sets it up before it serves.
func newFront(t *testing.T, upstream string, h slog.Handler, configure func(*proxy.Proxy)) (*httptest.Server, *proxy.Target) {
	t.Helper()
	p := proxy.New(slog.New(h))
	configure(p)
	target, err := p.NewTarget(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p.SetActive(target)
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		srv.Close()
		target.Close()
	})
	return srv, target
}

func TestUnreachableTargetGivesPlain502AndLogsTheCause(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	srv, logs := front(t, dead)

	resp, err := http.Get(srv.URL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if !strings.HasPrefix(string(body), "502 Bad Gateway") || strings.Contains(string(body), dead) || strings.Contains(string(body), "dial") {
		t.Fatalf("the 502 page leaks internals or is not plain:\n%s", body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	log := logs.String()
	if !strings.Contains(log, "upstream failed") || !strings.Contains(log, dead) || !strings.Contains(log, "connection refused") {
		t.Fatalf("the log does not name the target and the cause:\n%s", log)
	}
}

func TestEventStreamIsFlushedAsItArrives(t *testing.T) {
	next := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer upstream.Close()
	srv, _ := front(t, upstream.Listener.Addr().String())

	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	for i := range 3 {
		// The upstream waits for us before sending the next event, so each one can only
		// arrive here if the proxy flushed it on its own.
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("data: %d\n", i); line != want {
			t.Fatalf("event %d: got %q, want %q", i, line, want)
		}
		lines.ReadString('\n') // the blank line ending the event
		next <- struct{}{}
	}
}

func TestForwardedRequestKeepsHostAndSaysWhoAsked(t *testing.T) {
	seen := make(chan http.Header, 1)
	hosts := make(chan string, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		hosts <- r.Host
	}))
	defer upstream.Close()
	srv, _ := front(t, upstream.Listener.Addr().String())

	req, _ := http.NewRequest("GET", srv.URL+"/a?b=c", nil)
	req.Host = "shop.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	if host := <-hosts; host != "shop.example.com" {
		t.Errorf("upstream saw Host %q, want the client's shop.example.com", host)
	}
	if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want 127.0.0.1", got)
	}
	if got := h.Get("X-Forwarded-Host"); got != "shop.example.com" {
		t.Errorf("X-Forwarded-Host %q", got)
	}
	if got := h.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto %q, want http", got)
	}
}

func TestAccessLogLineHasWhatAnOperatorLooksFor(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "12345")
	}))
	defer upstream.Close()
	addr := upstream.Listener.Addr().String()
	srv, logs := front(t, addr)

	resp, err := http.Post(srv.URL+"/orders", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil {
		t.Fatalf("no access line in:\n%s", logs.String())
	}
	for key, want := range map[string]any{
		"method": "POST", "path": "/orders", "status": float64(201), "bytes": float64(5),
		"target": addr, "client": "127.0.0.1", "host": strings.TrimPrefix(srv.URL, "http://"),
	} {
		if line[key] != want {
			t.Errorf("access line %s = %v, want %v", key, line[key], want)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Errorf("access line has no duration: %v", line)
	}
}
