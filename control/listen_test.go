package control

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routie/routie/internal/testrig"
)

func TestListenRefusesASocketThatALiveDaemonOwns(t *testing.T) {
	path := testrig.SocketPath(t)
	first, err := Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	second, err := Listen(path, 0o600)
	if err == nil {
		second.Close()
		t.Fatal("a second Listen on a live socket succeeded")
	}
	want := "control socket " + path + " is in use by a running routied; stop it first (systemctl stop routied)"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	// The first daemon's socket still works.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live socket was disturbed: %v", err)
	}
	c.Close()
}

func TestListenReplacesAStaleSocket(t *testing.T) {
	path := testrig.SocketPath(t)
	// A socket file left behind by a daemon that died: bound, then closed without unlinking.
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("setup: the stale socket is missing: %v", err)
	}

	ln, err := Listen(path, 0o600)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the new socket: %v", err)
	}
	c.Close()
}

func TestListenCreatesTheDirectoryAndSetsTheMode(t *testing.T) {
	path := filepath.Join(filepath.Dir(testrig.SocketPath(t)), "run", "routie", "control.sock")
	ln, err := Listen(path, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&^0o755 != 0 {
		t.Errorf("directory mode %v, want at most 0755", di.Mode().Perm())
	}
}

func TestListenRefusesAFileThatIsNotASocket(t *testing.T) {
	path := testrig.SocketPath(t)
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(path, 0o600)
	if err == nil {
		ln.Close()
		t.Fatal("Listen replaced a regular file")
	}
	if !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("error %q does not say the path is not a socket", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("the file was changed: %q", b)
	}
}

func TestCloseRemovesTheSocketItCreated(t *testing.T) {
	path := testrig.SocketPath(t)
	ln, err := Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Close (err %v)", err)
	}
}

func TestCloseLeavesTheSocketOfASuccessor(t *testing.T) {
	path := testrig.SocketPath(t)
	old, err := Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// Someone removed the old daemon's socket and a new daemon listens at the same path.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	successor, err := Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer successor.Close()

	old.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("closing the old listener broke its successor's socket: %v", err)
	}
	c.Close()
}
