package control

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routie/routie/internal/testrig"
)

func currentUID() int { return os.Getuid() }
func currentPID() int { return os.Getpid() }

func TestClientNamesTheSocketAndWhatToCheckWhenItCannotDial(t *testing.T) {
	missing := testrig.SocketPath(t)
	_, err := NewClient(missing).Switch(t.Context(), SwitchRequest{Target: "8081"}, nil)
	want := "cannot reach routied at " + missing + ": no such file (is routied running? systemctl status routied; or pass --socket / set ROUTIE_SOCKET)"
	if err == nil || err.Error() != want {
		t.Errorf("missing socket:\n got %v\nwant %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}

	stale := testrig.SocketPath(t)
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close()
	_, err = NewClient(stale).Health(t.Context(), "8081")
	want = "cannot reach routied at " + stale + ": connection refused; the socket is left from a routied that is not running (systemctl status routied)"
	if err == nil || err.Error() != want {
		t.Errorf("stale socket:\n got %v\nwant %s", err, want)
	}
}

func TestClientSaysToRunAsRootOrJoinTheGroupWhenDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root is never denied a socket")
	}
	path := testrig.SocketPath(t)
	ln, err := Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err = NewClient(path).Version(t.Context())
	if err == nil || !strings.Contains(err.Error(), "cannot reach routied at "+path+": permission denied; run as root, or join its group") {
		t.Errorf("got %v", err)
	}
}

func TestStatusRetriesWhileRoutiedStarts(t *testing.T) {
	blue := testrig.StartApp(t, "")
	path := testrig.SocketPath(t)
	c := NewClient(path)
	c.statusRetry = time.Minute // the test, not the deadline, decides when routied is up
	firstFailure := make(chan struct{})
	var once sync.Once
	dial := c.dial
	c.dial = func(ctx context.Context) (net.Conn, error) {
		conn, err := dial(ctx)
		if err != nil {
			once.Do(func() { close(firstFailure) })
		}
		return conn, err
	}
	type answer struct {
		s   StatusResponse
		err error
	}
	done := make(chan answer, 1)
	go func() {
		s, err := c.Status(t.Context())
		done <- answer{s, err}
	}()

	<-firstFailure
	newRigAt(t, path, blue.Addr())
	a := <-done
	if a.err != nil {
		t.Fatalf("Status after routied came up: %v", a.err)
	}
	if a.s.Version != Version {
		t.Errorf("version %q, want %q", a.s.Version, Version)
	}
}

func TestStatusStopsRetryingWhenTheContextEnds(t *testing.T) {
	path := testrig.SocketPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NewClient(path).Status(ctx)
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("Status took %s with a 50ms context", took)
	}
	if err == nil || !strings.Contains(err.Error(), "cannot reach routied at "+path) {
		t.Errorf("got %v, want the socket's error rather than the context's", err)
	}
}
