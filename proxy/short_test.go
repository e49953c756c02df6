package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingUpstream is an upstream that counts the connections routie opens to it.
type countingUpstream struct {
	*httptest.Server
	opened atomic.Int64
}

func newCountingUpstream(t *testing.T, h http.HandlerFunc) *countingUpstream {
	t.Helper()
	u := &countingUpstream{}
	u.Server = httptest.NewUnstartedServer(h)
	u.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.opened.Add(1)
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func mustGet(t *testing.T, c *http.Client, method, url string, body io.Reader) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestUpstreamConnectionIsReusedAcrossRequests(t *testing.T) {
	up := newCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" ok")
	})
	srv, _ := front(t, up.Listener.Addr().String())
	c := srv.Client()
	for _, method := range []string{"GET", "HEAD", "GET", "GET"} {
		if status, _ := mustGet(t, c, method, srv.URL+"/", nil); status != 200 {
			t.Fatalf("%s: %d", method, status)
		}
	}
	if n := up.opened.Load(); n != 1 {
		t.Fatalf("routie opened %d connections to the upstream for 4 sequential requests, want 1", n)
	}
}

func TestRequestOnConnectionTheUpstreamClosedIsRetriedOnce(t *testing.T) {
	up := newCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "fresh")
	})
	srv, _ := front(t, up.Listener.Addr().String())
	c := srv.Client()
	mustGet(t, c, "GET", srv.URL+"/", nil)
	// The upstream drops its idle keep-alive connections, as Tomcat does after 20 s.
	up.CloseClientConnections()
	if status, body := mustGet(t, c, "GET", srv.URL+"/", nil); status != 200 || body != "fresh" {
		t.Fatalf("GET after the upstream closed the pooled connection: %d %q, want 200", status, body)
	}
}

func TestRequestWithBodyIsForwardedWhole(t *testing.T) {
	up := newCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+":"+string(b))
	})
	srv, _ := front(t, up.Listener.Addr().String())
	payload := strings.Repeat("x", 100<<10)
	status, body := mustGet(t, srv.Client(), "POST", srv.URL+"/orders", strings.NewReader(payload))
	if status != 200 || body != "POST:"+payload {
		t.Fatalf("POST with a 100 KiB body: %d, %d bytes back", status, len(body))
	}
}

func TestClientLeavingMidResponseClosesTheUpstreamConnection(t *testing.T) {
	gone := make(chan struct{})
	up := newCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first chunk\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the upstream sees its request end when routie drops the connection
		close(gone)
	})
	srv, _ := front(t, up.Listener.Addr().String())

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/download", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 12)
	io.ReadFull(resp.Body, buf)
	cancel()
	resp.Body.Close()
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not ended after the client left")
	}
}
