package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routie/routie/proxy"
)

// bodyUpstream records what reaches it: each request's body as read, and whether the read
// ended cleanly (a complete body) or with an error (an aborted one).
type bodyUpstream struct {
	*countingUpstream
	mu       sync.Mutex
	complete []int // byte counts of bodies read to a clean end
	aborted  []int // byte counts of bodies that broke off
	closed   int   // upstream connections closed
}

func newBodyUpstream(t *testing.T) *bodyUpstream {
	t.Helper()
	u := &bodyUpstream{}
	u.countingUpstream = &countingUpstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		if err != nil {
			u.aborted = append(u.aborted, int(n))
		} else {
			u.complete = append(u.complete, int(n))
		}
		u.mu.Unlock()
		fmt.Fprintf(w, "got %d bytes", n)
	}))
	u.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			u.opened.Add(1)
		case http.StateClosed:
			u.mu.Lock()
			u.closed++
			u.mu.Unlock()
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

// settled waits until every connection routie opened to the upstream is closed, so what the
// upstream's handlers saw is final.
func (u *bodyUpstream) settled(t *testing.T) (complete, aborted []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u.mu.Lock()
		done := int64(u.closed) == u.opened.Load()
		complete, aborted = append([]int(nil), u.complete...), append([]int(nil), u.aborted...)
		u.mu.Unlock()
		if done {
			return complete, aborted
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream connections still open after 10s: %d opened, %d closed", u.opened.Load(), u.closed)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// limitedFront starts a proxy with limits.max_body = maxBody in front of upstream.
func limitedFront(t *testing.T, upstream string, maxBody int64) (*httptest.Server, *proxy.Target) {
	t.Helper()
	h := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})
	return newFront(t, upstream, h, func(p *proxy.Proxy) {
		p.SetAccessLog(false)
		p.SetMaxBody(maxBody)
	})
}

// sendRaw writes head and then body (through chunked framing when chunked) on a raw
// connection, concurrently with reading the answer, as a client that does not wait for
// 100 Continue does: the proxy may answer before the body is sent, and closes then.
func sendRaw(t *testing.T, addr, head string, body int, chunked bool) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		// Write errors are expected once the proxy answers 413 and closes.
		w := bufio.NewWriter(conn)
		w.WriteString(head)
		piece := strings.Repeat("b", 16<<10)
		for left := body; left > 0; left -= len(piece) {
			chunk := piece[:min(left, len(piece))]
			if chunked {
				fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk)
			} else {
				w.WriteString(chunk)
			}
			if w.Flush() != nil {
				return
			}
		}
		if chunked {
			w.WriteString("0\r\n\r\n")
		}
		w.Flush()
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestBodyOverMaxBodyIsRefusedWith413AndTheUpstreamNeverSeesItComplete(t *testing.T) {
	const limit = 64 << 10
	for _, tc := range []struct {
		name    string
		chunked bool
		body    int
		// streamed: a declared Content-Length over the limit is refused before routie
		// connects to the upstream; a chunked body is only known to be too large once it
		// has streamed past the limit, so the upstream sees it begin and break off.
		streamed bool
	}{
		{"Content-Length over the limit", false, limit + 1, false},
		{"much larger Content-Length", false, 100 << 20, false},
		{"chunked body over the limit", true, 1 << 20, true},
		{"chunked body one byte over", true, limit + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newBodyUpstream(t)
			srv, target := limitedFront(t, up.Listener.Addr().String(), limit)

			head := "POST /upload HTTP/1.1\r\nHost: shop.example\r\n"
			if tc.chunked {
				head += "Transfer-Encoding: chunked\r\n\r\n"
			} else {
				head += fmt.Sprintf("Content-Length: %d\r\n\r\n", tc.body)
			}
			resp, body := sendRaw(t, srv.Listener.Addr().String(), head, tc.body, tc.chunked)

			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d (%q), want 413", resp.StatusCode, body)
			}
			want := "413 Content Too Large\n\nThe request body is larger than the 64 KiB this server accepts.\n"
			if body != want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("413 answer: %s %q, want text/plain %q", resp.Header.Get("Content-Type"), body, want)
			}
			complete, aborted := up.settled(t)
			if len(complete) > 0 {
				t.Fatalf("the upstream read a complete body of %d bytes; it must never get an oversized request whole", complete[0])
			}
			switch {
			case !tc.streamed && up.opened.Load() != 0:
				t.Errorf("routie opened %d connections to the upstream for a body refused by its Content-Length", up.opened.Load())
			case tc.streamed && (len(aborted) != 1 || aborted[0] > limit):
				t.Errorf("the upstream read bodies that broke off after %v bytes; want one, cut at most at the %d allowed", aborted, limit)
			}
			if s := target.Stats(); s.Classes[4] != 1 || s.Failed != 0 {
				t.Errorf("stats: %d 4xx, %d failed; want the 413 counted as one 4xx and not as a target failure", s.Classes[4], s.Failed)
			}
		})
	}
}

func TestBodyOfExactlyMaxBodyIsForwardedWhole(t *testing.T) {
	const limit = 64 << 10
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%t", chunked), func(t *testing.T) {
			up := newBodyUpstream(t)
			srv, _ := limitedFront(t, up.Listener.Addr().String(), limit)
			head := "POST /upload HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n"
			if chunked {
				head += "Transfer-Encoding: chunked\r\n\r\n"
			} else {
				head += fmt.Sprintf("Content-Length: %d\r\n\r\n", limit)
			}
			resp, body := sendRaw(t, srv.Listener.Addr().String(), head, limit, chunked)
			if resp.StatusCode != http.StatusOK || body != fmt.Sprintf("got %d bytes", limit) {
				t.Fatalf("a body of exactly limits.max_body: %d %q, want 200 and all %d bytes upstream", resp.StatusCode, body, limit)
			}
		})
	}
}

func TestMaxBodyZeroForwardsAnySize(t *testing.T) {
	up := newBodyUpstream(t)
	srv, _ := limitedFront(t, up.Listener.Addr().String(), 0)
	const size = 3 << 20
	status, body := mustGet(t, srv.Client(), "POST", srv.URL+"/upload", io.LimitReader(zeros{}, size))
	if status != http.StatusOK || body != fmt.Sprintf("got %d bytes", size) {
		t.Fatalf("max_body 0 with a 3 MiB chunked body: %d %q", status, body)
	}
}

// zeros is an endless body; behind io.LimitReader the client sends it chunked.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

func TestHTTP2BodyOfUnknownLengthOverMaxBodyIsRefusedWith413(t *testing.T) {
	const limit = 64 << 10
	up := newBodyUpstream(t)
	p := proxy.New(slog.New(slog.DiscardHandler))
	p.SetAccessLog(false)
	p.SetMaxBody(limit)
	target, err := p.NewTarget(up.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p.SetActive(target)
	srv := httptest.NewUnstartedServer(p)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		target.Close()
	})

	// A body behind a pipe has no length: HTTP/2 sends it in DATA frames without a
	// content-length, as browsers do for streamed uploads.
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 16<<10)
		for range 64 { // 1 MiB
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	t.Cleanup(func() { pr.Close() })
	resp, err := srv.Client().Post(srv.URL+"/upload", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("%s %d %q, want HTTP/2 413", resp.Proto, resp.StatusCode, body)
	}
	if complete, _ := up.settled(t); len(complete) > 0 {
		t.Fatalf("the upstream read a complete body of %d bytes", complete[0])
	}
}
