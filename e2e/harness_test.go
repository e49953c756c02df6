// Package e2e runs the built routied, routiectl and demo app binaries as real processes on
// 127.0.0.1 and checks what an operator and a client see.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/routie/routie/control"
)

// bin holds the binaries built once for the whole package.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "routie-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := osexec.Command("go", "build", "-o", dir+"/", "../cmd/routied", "../cmd/routiectl", "../demo/app", "../demo/load")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// shortDir returns a temp dir with a short path: a unix socket path must fit in 108 bytes.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// process is a started binary whose stderr is kept for assertions.
type process struct {
	cmd  *osexec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
	err  error
}

func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: osexec.Command(filepath.Join(bin, name), args...), done: make(chan struct{})}
	p.run(t, name)
	return p
}

// run starts p's command and keeps its stderr. The log is read from a pipe of our own, not
// exec's: a routied started by an upgrade inherits the pipe and keeps writing to it after
// the first process is gone, and the process's exit must not wait for that.
func (p *process) run(t *testing.T, name string) {
	t.Helper()
	p.cmd.Stdout = io.Discard
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.Write(sc.Bytes())
			p.logs.WriteByte('\n')
			p.mu.Unlock()
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", name, tail(p.log(), 30))
		}
	})
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// waitLog waits until the process has logged s.
func (p *process) waitLog(t *testing.T, s string) {
	t.Helper()
	eventually(t, fmt.Sprintf("log line %q", s), func() bool { return strings.Contains(p.log(), s) })
}

// stop sends SIGTERM and returns the exit code.
func (p *process) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("process did not exit within 20s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// demoApp starts the demo app binary on a free port and waits until it answers.
func demoApp(t *testing.T, name string) int {
	t.Helper()
	port := freePort(t)
	start(t, "app", "-listen", "127.0.0.1:"+strconv.Itoa(port), "-name", name)
	eventually(t, name+" to answer", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/actuator/health", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return port
}

// daemon is a running routied with its config file, ports and socket.
type daemon struct {
	*process
	dir       string
	config    string
	socket    string
	httpPort  int
	httpsPort int
}

// testConfig is a routied config for a test: fast health checks and drains, JSON logs,
// no metrics listener (tests run many routieds at once), everything under one directory.
type testConfig struct {
	HTTPPort, HTTPSPort, Initial int
	// TLS is the body of [tls]; "" is self-signed for localhost and 127.0.0.1.
	TLS string
	// Upstream is more lines for [upstream], such as ports.
	Upstream string
	// LogLevel is log.level; "" is the default, info.
	LogLevel string
	// Extra is appended to the file: whole tables such as [deploy].
	Extra string
}

// write writes c as dir/routie.toml and returns its path.
func (c testConfig) write(t *testing.T, dir string) string {
	t.Helper()
	if c.TLS == "" {
		c.TLS = "mode = \"self-signed\"\ndomains = [\"localhost\", \"127.0.0.1\"]"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	cfg := fmt.Sprintf(`[listen]
http = "127.0.0.1:%d"
https = "127.0.0.1:%d"

[tls]
%s

[upstream]
initial = %d
%s

[health]
interval = "50ms"
passes = 2
wait = "5s"

[drain]
timeout = "10s"
streams = "1s"

[control]
socket = %q

[state]
dir = %q

[log]
format = "json"
level = %q

[metrics]
listen = ""
%s`, c.HTTPPort, c.HTTPSPort, c.TLS, c.Initial, c.Upstream, filepath.Join(dir, "c.sock"), filepath.Join(dir, "state"), c.LogLevel, c.Extra)
	path := filepath.Join(dir, "routie.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeConfig writes a routied config for the test into dir. extra is appended as is.
func writeConfig(t *testing.T, dir string, httpPort, httpsPort, initial int, extra string) string {
	t.Helper()
	return testConfig{HTTPPort: httpPort, HTTPSPort: httpsPort, Initial: initial, Extra: extra}.write(t, dir)
}

// startDaemon starts routied in front of initial and waits until it is ready.
func startDaemon(t *testing.T, initial int) *daemon {
	t.Helper()
	d := &daemon{dir: shortDir(t), httpPort: freePort(t), httpsPort: freePort(t)}
	d.config = writeConfig(t, d.dir, d.httpPort, d.httpsPort, initial, "")
	d.socket = filepath.Join(d.dir, "c.sock")
	d.restart(t)
	return d
}

// restart starts a (new) routied process on the daemon's config.
func (d *daemon) restart(t *testing.T) {
	t.Helper()
	d.process = start(t, "routied", "-config", d.config)
	d.waitLog(t, "routied ready")
}

// ctl runs routiectl against the daemon and returns its exit code, stdout and stderr.
func (d *daemon) ctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return routiectl(t, d.socket, args...)
}

func routiectl(t *testing.T, socket string, args ...string) (int, string, string) {
	t.Helper()
	cmd := osexec.Command(filepath.Join(bin, "routiectl"), append([]string{"--socket", socket}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*osexec.ExitError); err != nil && !ok {
		t.Fatalf("routiectl %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func (d *daemon) client() *control.Client { return control.NewClient(d.socket) }

// httpsClient trusts nothing but does keep-alive; the daemon's certificate is self-signed.
func httpsClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			ForceAttemptHTTP2: false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// fetch GETs url and returns the status, the X-App header and the body.
func fetch(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-App"), string(body)
}

func (d *daemon) url(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", d.httpsPort, path)
}

func (d *daemon) activeApp(t *testing.T) string {
	t.Helper()
	_, app, _ := fetch(t, httpsClient(), d.url("/"))
	return app
}

func (d *daemon) status(t *testing.T) control.StatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := d.client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exec runs a binary to completion and returns its combined output.
func exec(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := osexec.Command(filepath.Join(bin, name), args...).CombinedOutput()
	return string(out), err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
