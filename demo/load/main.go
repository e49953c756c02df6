// Command demo-load is a small, bounded HTTP load generator for testing routie on this
// machine: `make demo` and the switch benchmarks run it against routied while it switches
// between blue and green, and rely on its exit status to prove that nothing was dropped.
// It only targets the one loopback URL it is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const usage = `demo-load: keep-alive HTTP load against one loopback URL, for testing routie.

Usage:
  demo-load -url URL [flags]

Example:
  # 32 keep-alive connections for 10s through routied's self-signed HTTPS,
  # counting which app (blue or green) answered each request:
  demo-load -url https://localhost:8443/ -insecure -c 32 -d 10s -by-header X-App -progress

It prints requests, failures (transport errors), non-2xx answers, req/s, latency
percentiles and the count per -by-header value, and exits 1 if any request failed or
was answered outside 2xx (also if none completed), 2 for a bad command line.
Redirects are not followed: a 308 from plain HTTP to HTTPS counts as non-2xx.

Only loopback targets are accepted (localhost, 127.0.0.0/8, ::1): this is a tool for
testing on your own machine, not for loading other people's servers.

Flags:
`

// config is the parsed command line.
type config struct {
	url      string
	conns    int
	duration time.Duration
	limit    int64
	timeout  time.Duration
	insecure bool
	byHeader string
	json     bool
	progress bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo-load: %v\nTry: demo-load -help\n", err)
		os.Exit(2)
	}
	rep, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo-load: %v\n", err)
		os.Exit(2)
	}
	if cfg.json {
		err = rep.writeJSON(os.Stdout)
	} else {
		err = rep.writeText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo-load: writing the report: %v\n", err)
		os.Exit(1)
	}
	if !rep.OK {
		os.Exit(1)
	}
}

// parseFlags turns the command line into a config. For -help it writes the usage to help
// and returns flag.ErrHelp; other errors are returned for the caller to print once.
func parseFlags(args []string, help io.Writer) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("demo-load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&cfg.url, "url", "", "the `URL` to GET, on localhost, 127.0.0.0/8 or ::1 (required)")
	fs.IntVar(&cfg.conns, "c", 32, "concurrent keep-alive `connections`, one request at a time on each")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "how long to send requests; in-flight ones are finished")
	fs.Int64Var(&cfg.limit, "n", 0, "stop after this many `requests` in all, if before -d (0: no limit)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "bound on one request, body included; past it the request failed")
	fs.BoolVar(&cfg.insecure, "insecure", false, "accept any TLS certificate (routied's self-signed one)")
	fs.StringVar(&cfg.byHeader, "by-header", "X-App", "count responses by this response `header`'s value (\"\": don't)")
	fs.BoolVar(&cfg.json, "json", false, "print the report as JSON, for scripts")
	fs.BoolVar(&cfg.progress, "progress", false, "print a line to stderr every second")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(help, usage)
			fs.SetOutput(help)
			fs.PrintDefaults()
		}
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q; give the target as -url %s", fs.Arg(0), fs.Arg(0))
	}
	if err := checkURL(cfg.url); err != nil {
		return config{}, err
	}
	switch {
	case cfg.conns < 1 || cfg.conns > 1024:
		return config{}, fmt.Errorf("-c %d: want 1 to 1024 connections", cfg.conns)
	case cfg.duration <= 0 || cfg.duration > 24*time.Hour:
		return config{}, fmt.Errorf("-d %v: want a duration from 1ms to 24h, e.g. -d 10s", cfg.duration)
	case cfg.limit < 0:
		return config{}, fmt.Errorf("-n %d is negative; use 0 for no limit", cfg.limit)
	case cfg.timeout <= 0 || cfg.timeout > time.Hour:
		return config{}, fmt.Errorf("-timeout %v: want a duration from 1ms to 1h, e.g. -timeout 5s", cfg.timeout)
	}
	return cfg, nil
}

// checkURL accepts absolute http and https URLs whose host is loopback.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("-url is required, e.g. -url http://127.0.0.1:8080/")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("-url %q: want an http:// or https:// URL, e.g. http://127.0.0.1:8080/", raw)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-url %q: host %q is not loopback; demo-load only targets localhost, 127.0.0.0/8 or ::1", raw, host)
	}
	return nil
}

// run sends the load and returns what happened. Progress lines, if asked for, go to
// progress. It returns an error only if the load could not be set up.
func run(ctx context.Context, cfg config, progress io.Writer) (*report, error) {
	var dials, issued atomic.Int64
	workers := make([]*worker, cfg.conns)
	for i := range workers {
		w, err := newWorker(ctx, cfg, &dials)
		if err != nil {
			return nil, fmt.Errorf("-url %q: %w", cfg.url, err)
		}
		workers[i] = w
	}

	start := time.Now()
	deadline := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(ctx, deadline, &issued, cfg.limit) })
	}
	stopProgress := func() {}
	if cfg.progress {
		stopProgress = reportProgress(workers, start, cfg.byHeader, progress)
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	total := newStats()
	for _, w := range workers {
		total.merge(w.stats) // the workers are done: no lock needed
	}
	return newReport(cfg, total, elapsed, dials.Load(), ctx.Err() != nil), nil
}

// reportProgress writes one line a second until the returned stop is called, which waits
// for the last line to be written.
func reportProgress(workers []*worker, start time.Time, header string, out io.Writer) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		prev := newStats()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			now := newStats()
			for _, w := range workers {
				w.snapshot(now)
			}
			fmt.Fprintf(out, "%4.0fs %8d req %7d req/s  failed %d  non-2xx %d",
				time.Since(start).Seconds(), now.requests, now.requests-prev.requests, now.failed, now.non2xx)
			if header != "" {
				fmt.Fprintf(out, "  last second by %s:", header)
				for _, k := range sortedKeys(now.values) {
					if d := now.values[k] - prev.values[k]; d > 0 {
						fmt.Fprintf(out, " %s=%d", k, d)
					}
				}
			}
			fmt.Fprintln(out)
			prev = now
		}
	})
	return func() { close(done); wg.Wait() }
}
