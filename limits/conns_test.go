package limits_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/limits"
)

// capped is an HTTP server on 127.0.0.1 behind a ConnCap. closed receives a value each time
// the server has closed a client connection.
type capped struct {
	addr   string
	cap    *limits.ConnCap
	logs   *testrig.LogBuffer
	closed chan struct{}
}

func startCapped(t *testing.T, max int) *capped {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &capped{addr: l.Addr().String(), logs: &testrig.LogBuffer{}, closed: make(chan struct{}, 64)}
	s.cap = limits.NewConnCap(max, slog.New(slog.NewTextHandler(s.logs, nil)))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed {
				s.closed <- struct{}{}
			}
		},
	}
	go srv.Serve(s.cap.Wrap(l))
	t.Cleanup(func() { srv.Close() })
	return s
}

// client is one keep-alive connection from a chosen local address.
type client struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialFrom(t *testing.T, local, addr string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{conn: conn, r: bufio.NewReader(conn)}
}

// get sends one request on the connection and returns the answer's status, or the error
// that ended the connection instead.
func (c *client) get() (int, error) {
	if _, err := io.WriteString(c.conn, "GET / HTTP/1.1\r\nHost: routie.test\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// refused reports whether a new connection from local is refused: reset during the dial
// (the cap closed it before the client saw the handshake finish), or closed before an answer.
func refused(t *testing.T, local, addr string) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return true
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = (&client{conn: conn, r: bufio.NewReader(conn)}).get()
	return err != nil
}

func mustServe(t *testing.T, c *client, who string) {
	t.Helper()
	if status, err := c.get(); err != nil || status != http.StatusOK {
		t.Fatalf("%s: status %d, err %v; want 200", who, status, err)
	}
}

func TestConnCapRefusesTheConnectionOverTheCapFromOneIPWhileOthersAreServed(t *testing.T) {
	const max = 3
	s := startCapped(t, max)

	var held []*client
	for i := range max {
		c := dialFrom(t, "127.0.0.1", s.addr)
		mustServe(t, c, "connection "+string(rune('1'+i))+" from 127.0.0.1")
		held = append(held, c)
	}

	if !refused(t, "127.0.0.1", s.addr) {
		t.Fatalf("connection %d from 127.0.0.1 was served; want it closed at once", max+1)
	}
	other := dialFrom(t, "127.0.0.2", s.addr)
	mustServe(t, other, "a connection from 127.0.0.2 while 127.0.0.1 is at the cap")
	// The held connections keep working: the cap refuses new connections, it cuts nothing.
	for _, c := range held {
		mustServe(t, c, "a held connection from 127.0.0.1")
	}
	if n := s.cap.Refused(); n != 1 {
		t.Errorf("Refused() = %d, want 1", n)
	}

	// A connection that closes gives its place back.
	held[0].conn.Close()
	<-s.closed // the refused connection never reached the server; this is held[0]
	mustServe(t, dialFrom(t, "127.0.0.1", s.addr), "a new connection from 127.0.0.1 after one of its connections closed")
}

func TestConnCapLogsARefusedClientOnceNotPerConnection(t *testing.T) {
	s := startCapped(t, 1)
	mustServe(t, dialFrom(t, "127.0.0.1", s.addr), "the first connection")
	for range 5 {
		if !refused(t, "127.0.0.1", s.addr) {
			t.Fatal("a connection over the cap was served")
		}
	}
	if n := strings.Count(s.logs.String(), "level=WARN"); n != 1 {
		t.Errorf("the refusal was logged %d times for 5 refused connections, want once:\n%s", n, s.logs)
	}
	if !strings.Contains(s.logs.String(), "client=127.0.0.1") {
		t.Errorf("the warning does not name the client:\n%s", s.logs)
	}
}

func TestConnCapChangesApplyToNewConnections(t *testing.T) {
	s := startCapped(t, 1)
	first := dialFrom(t, "127.0.0.1", s.addr)
	mustServe(t, first, "the first connection")

	s.cap.SetMax(2)
	mustServe(t, dialFrom(t, "127.0.0.1", s.addr), "a second connection after SetMax(2)")
	if !refused(t, "127.0.0.1", s.addr) {
		t.Fatal("a third connection was served with the cap at 2")
	}

	s.cap.SetMax(0)
	for i := range 5 {
		mustServe(t, dialFrom(t, "127.0.0.1", s.addr), "connection "+string(rune('3'+i))+" with the cap off")
	}

	// Back on, the connections opened while it was off count.
	s.cap.SetMax(7)
	if !refused(t, "127.0.0.1", s.addr) {
		t.Fatal("an eighth connection was served with the cap back at 7")
	}
	mustServe(t, first, "the first connection, held all along")
}
