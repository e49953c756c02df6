package testrig

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Patience is how long WaitFor and Recv wait: far longer than any step of a test takes, far
// shorter than go test's own timeout.
const Patience = 10 * time.Second

// WaitFor polls cond every 5ms until it holds, failing the test if it does not within
// Patience.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Recv receives from c, failing the test if nothing comes within Patience.
func Recv[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(Patience):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// DeadPort returns a 127.0.0.1 address where nothing listens: a listener opened and closed.
func DeadPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// SocketPath returns a path for a control socket in a fresh directory, removed when the test
// ends. Nothing listens there. It avoids t.TempDir, whose long names can pass the 108-byte
// limit of a unix socket path.
func SocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "control.sock")
}
