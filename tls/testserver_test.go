package tls

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routie/routie/conf"
)

// testOptions debounce briefly, so reload tests finish fast.
func testOptions() options {
	o := defaultOptions()
	o.debounce = 20 * time.Millisecond
	return o
}

// newTestCertificates is New with testOptions, closed when the test ends.
func newTestCertificates(t *testing.T, c conf.TLS, stateDir string, log *slog.Logger, o options) *Certificates {
	t.Helper()
	certs, err := newCertificates(t.Context(), c, host{stateDir: stateDir}, log, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(certs.Close)
	return certs
}

// serve runs an http.Server with certs' TLSConfig on a real 127.0.0.1 socket, as routied
// does, and returns its address. The handler answers with the request's protocol.
func serve(t *testing.T, certs *Certificates) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Proto)
		}),
		TLSConfig: certs.TLSConfig(),
		// Handshakes that tests make fail on purpose would log here.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	return ln.Addr().String()
}

// dial makes a TLS connection that verifies the server against roots for serverName ("" to
// verify the address's IP), closed when the test ends.
func dial(t *testing.T, addr string, roots *x509.CertPool, serverName string) (*tls.Conn, error) {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: serverName}}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn), nil
}

// servedSerial returns the serial of the leaf the server sends now, without verifying it,
// or "" if the handshake fails.
func servedSerial(t *testing.T, addr string) string {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// get sends one HTTP/1.1 request on c and checks the response, keeping c open.
func get(t *testing.T, c *tls.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "HTTP/1.1" {
		t.Fatalf("response = %d %q, want 200 %q", resp.StatusCode, body, "HTTP/1.1")
	}
}

// waitFor polls cond until it holds, failing the test after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logBuffer collects what a logger writes; the watcher writes from its own goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) contains(s string) bool { return strings.Contains(l.String(), s) }

// newTestLogger returns a debug logger into a buffer that is printed if the test fails.
func newTestLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// closedWithin reports whether ch is closed within d; with d = 0, whether it is closed now.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}
