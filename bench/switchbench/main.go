// Command switchbench measures routied switching between two apps under keep-alive load: the
// requests that failed, how soon the new app answers after each switch, and the connections
// routied still holds to the old app once its drain is over. `make bench` runs it; see
// bench/bench.sh.
//
// It is a benchmark, not a test: it prints what it measured and exits 1 when a request failed,
// a switch failed or a connection to the old target was left open, so that a script notices.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/routie/routie/control"
	"github.com/routie/routie/switcher"
)

const usage = `switchbench: switch routied back and forth between two apps under keep-alive load.

Usage:
  switchbench -url URL -socket PATH -targets PORT=APP,PORT=APP [flags]

Example:
  # 64 keep-alive connections over HTTPS, 10 switches between blue (18081) and green (18082):
  switchbench -url https://127.0.0.1:18084/ -socket /tmp/b/control.sock \
      -targets 18081=blue,18082=green -c 64 -switches 10

APP is the X-App header the app on PORT answers with (demo-app -name). The first target is
made active before the load starts. Each switch is timed from the call until the first
response from the new app; after its drain, routied's connections to the old target are
counted twice: by routied's status (conns of the standby) and by ss(8).

Exit status: 0 when no request failed, every switch succeeded and no connection to an old
target was left; 1 otherwise; 2 for a bad command line.

Flags:
`

// target is one of the two apps.
type target struct {
	port string // as routiectl takes it: "18081"
	app  string // its X-App header
}

type config struct {
	url      *url.URL
	socket   string
	targets  [2]target
	conns    int
	switches int
	pause    time.Duration
	settle   time.Duration
	limit    time.Duration
	timeout  time.Duration
	pid      int
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchbench: %v\nTry: switchbench -h\n", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.limit)
	defer cancel()
	ok, err := run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchbench: %v\n", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var cfg config
	var rawURL, rawTargets string
	fs := flag.NewFlagSet("switchbench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&rawURL, "url", "", "routied `URL` to send GET requests to (required)")
	fs.StringVar(&cfg.socket, "socket", "", "routied's control socket `path` (required)")
	fs.StringVar(&rawTargets, "targets", "", "`PORT=APP,PORT=APP`: the two targets and their X-App values (required)")
	fs.IntVar(&cfg.conns, "c", 64, "keep-alive `connections`, one request at a time on each")
	fs.IntVar(&cfg.switches, "switches", 10, "`number` of switches, alternating between the two targets")
	fs.DurationVar(&cfg.pause, "pause", 500*time.Millisecond, "load between one switch's end and the next switch")
	fs.DurationVar(&cfg.settle, "settle", 3*time.Second, "how long to wait for the old target's connections to close after its drain")
	fs.DurationVar(&cfg.limit, "limit", 90*time.Second, "bound on the whole run")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "bound on one request; past it the request failed")
	fs.IntVar(&cfg.pid, "pid", 0, "routied's process id: ss counts only its connections (0: every process's, e.g. a proxy's next to it too)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q; all settings are flags", fs.Arg(0))
	case rawURL == "" || cfg.socket == "" || rawTargets == "":
		return cfg, errors.New("-url, -socket and -targets are required")
	case cfg.conns < 1 || cfg.switches < 1:
		return cfg, fmt.Errorf("-c %d and -switches %d must be at least 1", cfg.conns, cfg.switches)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, fmt.Errorf("-url %q: want http://host:port/ or https://host:port/", rawURL)
	}
	cfg.url = u
	parts := strings.Split(rawTargets, ",")
	if len(parts) != 2 {
		return cfg, fmt.Errorf("-targets %q: want two, e.g. 18081=blue,18082=green", rawTargets)
	}
	for i, p := range parts {
		port, app, ok := strings.Cut(p, "=")
		if n, err := strconv.Atoi(port); !ok || err != nil || n < 1 || n > 65535 || app == "" {
			return cfg, fmt.Errorf("-targets: %q is not PORT=APP, e.g. 18081=blue", p)
		}
		cfg.targets[i] = target{port: port, app: app}
	}
	if cfg.targets[0].app == cfg.targets[1].app {
		return cfg, fmt.Errorf("-targets: both apps answer X-App %q; the switch could not be seen", cfg.targets[0].app)
	}
	return cfg, nil
}

// watch is the switch being timed: the first response carrying app after the call sets seen.
type watch struct {
	app  string
	seen atomic.Int64 // time since the run's start, in ns; 0 until seen
}

// load is the keep-alive load: cfg.conns workers, each with its own connection.
type load struct {
	cfg   config
	start time.Time
	watch atomic.Pointer[watch]
	stop  atomic.Bool

	requests, failed, non2xx, dials atomic.Int64

	mu     sync.Mutex // guards byApp and errs
	byApp  map[string]int64
	errs   []string
	wg     sync.WaitGroup
	client []*http.Client
}

func newLoad(cfg config, start time.Time) *load {
	l := &load{cfg: cfg, start: start, byApp: map[string]int64{}}
	for range cfg.conns {
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				l.dials.Add(1)
				return dialer.DialContext(ctx, network, addr)
			},
			// One connection per worker, kept alive across the switches: routied must swap the
			// target behind connections that stay open.
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
			// routied's certificate is self-signed; HTTP/1.1 like wrk and most load balancers.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
		}
		l.client = append(l.client, &http.Client{
			Transport: tr,
			Timeout:   cfg.timeout,
			// An answer is an answer; a redirect counts as non-2xx.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		})
	}
	return l
}

func (l *load) run() {
	for _, c := range l.client {
		l.wg.Go(func() { l.worker(c) })
	}
}

// halt stops sending; requests in flight finish (within -timeout) so none is cut by us.
func (l *load) halt() {
	l.stop.Store(true)
	l.wg.Wait()
	for _, c := range l.client {
		c.CloseIdleConnections()
	}
}

func (l *load) worker(c *http.Client) {
	byApp := map[string]int64{}
	defer func() {
		l.mu.Lock()
		for k, v := range byApp {
			l.byApp[k] += v
		}
		l.mu.Unlock()
	}()
	for !l.stop.Load() {
		resp, err := c.Get(l.cfg.url.String())
		l.requests.Add(1)
		if err != nil {
			l.failed.Add(1)
			l.note(err.Error())
			continue
		}
		app := resp.Header.Get("X-App")
		if w := l.watch.Load(); w != nil && app == w.app {
			w.seen.CompareAndSwap(0, int64(time.Since(l.start)))
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			l.failed.Add(1)
			l.note("reading the body: " + err.Error())
		case resp.StatusCode/100 != 2:
			l.non2xx.Add(1)
			l.note(fmt.Sprintf("HTTP %d from %q", resp.StatusCode, app))
		default:
			byApp[app]++
		}
	}
}

// note keeps the first few error messages for the report.
func (l *load) note(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, msg)
	}
}

// switchResult is what one switch measured.
type switchResult struct {
	to        target
	err       error
	callSwap  time.Duration // from the call until the swap event arrived
	callNew   time.Duration // from the call until the first response from the new app; -1: none
	swapNew   time.Duration // from the swap event until that response; negative: before the event
	waited    int64         // requests in flight on the old target at the swap
	drainTook time.Duration
	leftConns int64         // routied's conns to the old target once settled (status)
	leftSS    int           // the same by ss; -1 when ss could not run
	closedIn  time.Duration // from the switch's end until the status showed 0 conns
}

func run(ctx context.Context, cfg config, out io.Writer) (bool, error) {
	client := control.NewClient(cfg.socket)
	st, err := client.Status(ctx)
	if err != nil {
		return false, err
	}
	first := cfg.targets[0]
	if portOf(st.Active.Addr) != first.port {
		if _, err := client.Switch(ctx, control.SwitchRequest{Target: first.port}, nil); err != nil {
			return false, fmt.Errorf("making %s (%s) active before the load: %w", first.port, first.app, err)
		}
	}

	start := time.Now()
	l := newLoad(cfg, start)
	l.run()
	halted := false
	defer func() {
		if !halted {
			l.halt()
		}
	}()
	// Let every connection open and the pools fill before the first switch.
	if err := sleep(ctx, time.Second); err != nil {
		return false, err
	}
	if l.requests.Load() == 0 {
		return false, fmt.Errorf("no request to %s finished in the first second", cfg.url)
	}

	results := make([]switchResult, 0, cfg.switches)
	for i := range cfg.switches {
		to, from := cfg.targets[(i+1)%2], cfg.targets[i%2]
		r := switchOnce(ctx, client, l, from, to)
		results = append(results, r)
		if r.err != nil || ctx.Err() != nil {
			break
		}
		if err := sleep(ctx, cfg.pause); err != nil {
			break
		}
	}
	loadTook := time.Since(start)
	l.halt()
	halted = true

	// After the load: the last old target must hold nothing either, and none of routied's
	// targets should have a request in flight.
	final, ferr := client.Status(ctx)
	activeSS := -1
	if ferr == nil {
		// Cross-checks the ss count: routied's idle pool to the active target is still open.
		activeSS = establishedTo(ctx, portOf(final.Active.Addr), cfg.pid)
	}

	return report(out, cfg, l, loadTook, results, final, ferr, activeSS), nil
}

// switchOnce switches to `to` under load and measures it.
func switchOnce(ctx context.Context, client *control.Client, l *load, from, to target) switchResult {
	r := switchResult{to: to, callNew: -1, leftSS: -1}
	w := &watch{app: to.app}
	l.watch.Store(w)
	call := time.Since(l.start)
	var swapAt time.Duration
	rep, err := client.Switch(ctx, control.SwitchRequest{Target: to.port}, func(e switcher.Event) {
		if e.Kind == switcher.EventSwap {
			swapAt = time.Since(l.start)
		}
	})
	ended := time.Now()
	if err != nil {
		r.err = err
		return r
	}
	if rep.Drain != nil {
		r.waited, r.drainTook = rep.Drain.Waited, rep.Drain.Took
	}
	r.callSwap = swapAt - call
	// The new app normally answered long before the switch returned; give it a moment more
	// in case the load stalled.
	for deadline := time.Now().Add(2 * time.Second); w.seen.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if seen := time.Duration(w.seen.Load()); seen != 0 {
		r.callNew = seen - call
		r.swapNew = seen - swapAt
	}

	// routied closes the old target's pool after the drain; the switch returns on the drained
	// event, which comes just before that, so poll the status for a while.
	deadline := time.Now().Add(l.cfg.settle)
	for {
		st, err := client.Status(ctx)
		if err != nil {
			r.err = fmt.Errorf("status after the switch to %s: %w", to.port, err)
			return r
		}
		r.leftConns = connsTo(st.Status, from.port)
		if r.leftConns == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.closedIn = time.Since(ended)
	r.leftSS = establishedTo(ctx, from.port, l.cfg.pid)
	return r
}

// connsTo finds the target on port among active, standby and draining and returns its conns.
func connsTo(st switcher.Status, port string) int64 {
	all := []switcher.TargetStatus{st.Active}
	if st.Standby != nil {
		all = append(all, *st.Standby)
	}
	all = append(all, st.Draining...)
	for _, t := range all {
		if portOf(t.Addr) == port {
			return t.Conns
		}
	}
	return 0 // forgotten: routied closed it
}

// establishedTo counts established TCP connections to port on this machine, as
// `ss -tn state established '( dport = :PORT )'` does; with pid > 0 only that process's
// (ss -p names the owner of sockets this user may see, which includes a routied it started).
func establishedTo(ctx context.Context, port string, pid int) int {
	args := []string{"-Htn", "state", "established", "( dport = :" + port + " )"}
	if pid > 0 {
		args[0] = "-Htnp"
	}
	out, err := exec.CommandContext(ctx, "ss", args...).Output()
	if err != nil {
		return -1
	}
	if pid <= 0 {
		return bytes.Count(out, []byte("\n"))
	}
	owner := []byte("pid=" + strconv.Itoa(pid) + ",")
	n := 0
	for line := range bytes.Lines(out) {
		if bytes.Contains(line, owner) {
			n++
		}
	}
	return n
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return port
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the run's -limit ran out: %w", ctx.Err())
	}
}

// report prints the measurements and a last machine-readable line, and says whether every
// requirement held.
func report(out io.Writer, cfg config, l *load, took time.Duration, results []switchResult, final control.StatusResponse, finalErr error, activeSS int) bool {
	fmt.Fprintf(out, "switch under load: %d keep-alive connections, GET %s, %d switches between :%s (%s) and :%s (%s)\n",
		cfg.conns, cfg.url, cfg.switches, cfg.targets[0].port, cfg.targets[0].app, cfg.targets[1].port, cfg.targets[1].app)
	fmt.Fprintf(out, "  %-3s %-8s %10s %10s %10s %8s %9s %12s %10s\n",
		"#", "to", "call→swap", "call→new", "swap→new", "in-flt", "drain", "old conns*", "closed in")
	var callNew, swapNew []time.Duration
	var switchErrs []string
	maxLeft, maxSS, missing := int64(0), 0, 0
	ssFailed := false
	for i, r := range results {
		if r.err != nil {
			fmt.Fprintf(out, "  %-3d %-8s FAILED: %v\n", i+1, r.to.app, r.err)
			switchErrs = append(switchErrs, r.err.Error())
			continue
		}
		cn, sn := "never", "-"
		if r.callNew >= 0 {
			callNew = append(callNew, r.callNew)
			swapNew = append(swapNew, r.swapNew)
			cn, sn = ms(r.callNew), ms(r.swapNew)
		} else {
			missing++
		}
		ss := strconv.Itoa(r.leftSS)
		if r.leftSS < 0 {
			ss, ssFailed = "?", true
		}
		fmt.Fprintf(out, "  %-3d %-8s %10s %10s %10s %8d %9s %12s %10s\n", i+1, r.to.app,
			ms(r.callSwap), cn, sn, r.waited, ms(r.drainTook), fmt.Sprintf("%d/%s", r.leftConns, ss), ms(r.closedIn))
		maxLeft = max(maxLeft, r.leftConns)
		maxSS = max(maxSS, r.leftSS)
	}
	fmt.Fprintln(out, "  call→swap: until the swap event arrived; call→new, swap→new: until the first response from the new app")
	fmt.Fprintln(out, "  (negative: it came before the swap event, which routied sends after saving its state)")
	fmt.Fprintln(out, "  in-flt: requests in flight on the old target when its drain began; drain: how long it waited for them")
	fmt.Fprintln(out, "  * routied's connections to the old target after its drain: by routied's status / by ss")

	n := l.requests.Load()
	failed := l.failed.Load() + l.non2xx.Load()
	apps := make([]string, 0, len(l.byApp))
	for app, c := range l.byApp {
		apps = append(apps, fmt.Sprintf("%s %d", app, c))
	}
	slices.Sort(apps)
	fmt.Fprintf(out, "requests:       %d in %s (%.0f req/s); answered by %s\n", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), strings.Join(apps, ", "))
	fmt.Fprintf(out, "failed:         %d (transport errors %d, non-2xx %d)\n", failed, l.failed.Load(), l.non2xx.Load())
	for _, e := range l.errs {
		fmt.Fprintf(out, "                e.g. %s\n", e)
	}
	fmt.Fprintf(out, "client conns:   %d opened by %d workers (more means routied closed keep-alive connections)\n", l.dials.Load(), cfg.conns)
	if len(callNew) > 0 {
		fmt.Fprintf(out, "new app serves: median %s, max %s after the switch call; median %s, max %s after the swap event\n",
			ms(median(callNew)), ms(slices.Max(callNew)), ms(median(swapNew)), ms(slices.Max(swapNew)))
	}
	fmt.Fprintf(out, "old target:     at most %d connections left after a drain by routied's status, %d by ss\n", maxLeft, maxSS)
	if finalErr == nil {
		fmt.Fprintf(out, "after the load: %s", describeTargets(final.Status))
		fmt.Fprintf(out, "                ss sees %d connections to the active target (the cross-check sees what the status counts)\n", activeSS)
	}

	ok := failed == 0 && len(switchErrs) == 0 && len(results) == cfg.switches && missing == 0 && maxLeft == 0 && maxSS <= 0 && !ssFailed
	fmt.Fprintf(out, "RESULT requests=%d failed=%d switches=%d switch_errors=%d never_seen=%d call_new_p50_ms=%s call_new_max_ms=%s swap_new_p50_ms=%s swap_new_max_ms=%s left_status_max=%d left_ss_max=%d client_dials=%d ok=%t\n",
		n, failed, len(results)-len(switchErrs), len(switchErrs), missing,
		msNum(median(callNew)), msNum(maxOf(callNew)), msNum(median(swapNew)), msNum(maxOf(swapNew)),
		maxLeft, maxSS, l.dials.Load(), ok)
	return ok
}

func describeTargets(st switcher.Status) string {
	var b strings.Builder
	line := func(role string, t switcher.TargetStatus) {
		fmt.Fprintf(&b, "%s %s conns %d in-flight %d; ", role, t.Addr, t.Conns, t.InFlight)
	}
	line("active", st.Active)
	if st.Standby != nil {
		line("standby", *st.Standby)
	}
	for _, t := range st.Draining {
		line("draining", t)
	}
	return strings.TrimSuffix(b.String(), "; ") + "\n"
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

func ms(d time.Duration) string { return msNum(d) + "ms" }

func msNum(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}
