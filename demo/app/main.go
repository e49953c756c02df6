// Command demo-app is a small stand-in for the team's Spring Boot app: it answers the same
// health endpoint, can be slow, failing or still warming up on demand, and serves the kinds
// of traffic routied must carry across a switch (plain requests, slow requests, server-sent
// events and WebSockets). `make demo`, the end-to-end tests and the benchmarks run it as
// the upstream on 127.0.0.1:8080 and :8081.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const usage = `demo-app: a stand-in for the Spring Boot app behind routied, for demos and tests.

Usage:
  demo-app [flags]

Example:
  # blue on 8080, green on 8081 that takes 5s to pass its health check:
  demo-app -name blue -port 8080 &
  demo-app -name green -port 8081 -startup 5s &
  curl -i http://127.0.0.1:8081/actuator/health   # 503 {"status":"DOWN"} for 5s, then 200

Routes:
  GET  /actuator/health        200 {"status":"UP"}, or 503 {"status":"DOWN"} while -startup
                               runs or with -unhealthy
  GET  /                       "hello from NAME (PORT)", header X-App: NAME
  GET  /slow?d=3s              answers after d (at most 10m)
  GET  /events?n=10&every=100ms  n server-sent events "data: NAME i" (n=0: until the client
                               leaves or the app stops)
  GET  /ws                     WebSocket echo; each message comes back as "NAME: message"
  POST /echo                   the request body (at most 8 MiB)

On SIGTERM or SIGINT it stops accepting, lets in-flight requests finish for up to -grace,
and ends event streams and WebSockets (close status 1001 "going away").

Flags:
`

// config is the parsed command line.
type config struct {
	listen    string
	name      string
	failRate  float64
	delay     time.Duration
	unhealthy bool
	startup   time.Duration
	grace     time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	cfg, err := parseFlags(os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo-app: %v\nTry: demo-app -help\n", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo-app: %v\nTry: another -port, or stop what is listening on %s\n", err, cfg.listen)
		os.Exit(1)
	}
	if err := serve(ctx, ln, cfg, log); err != nil {
		fmt.Fprintf(os.Stderr, "demo-app: %v\n", err)
		os.Exit(1)
	}
}

// parseFlags turns the command line into a config. For -help it writes the usage to help
// and returns flag.ErrHelp; other errors are returned for the caller to print once.
func parseFlags(args []string, help io.Writer) (config, error) {
	var cfg config
	var port int
	fs := flag.NewFlagSet("demo-app", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "`address` to listen on")
	fs.IntVar(&port, "port", 0, "listen on 127.0.0.1:`PORT` (instead of -listen)")
	fs.StringVar(&cfg.name, "name", "blue", "`name` shown in responses and in the X-App header")
	fs.Float64Var(&cfg.failRate, "fail-rate", 0, "share of requests to / answered 500, from 0 to 1")
	fs.DurationVar(&cfg.delay, "delay", 0, "latency added to / and /echo")
	fs.BoolVar(&cfg.unhealthy, "unhealthy", false, "health always answers 503 DOWN")
	fs.DurationVar(&cfg.startup, "startup", 0, "health answers 503 DOWN until this long after start, like a warming JVM")
	fs.DurationVar(&cfg.grace, "grace", 10*time.Second, "how long in-flight requests may run after SIGTERM")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(help, usage)
			fs.SetOutput(help)
			fs.PrintDefaults()
		}
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q; all settings are flags", fs.Arg(0))
	}

	setListen := false
	fs.Visit(func(f *flag.Flag) { setListen = setListen || f.Name == "listen" })
	switch {
	case port != 0 && setListen:
		return config{}, errors.New("-listen and -port both given; use one")
	case port < 0 || port > 65535:
		return config{}, fmt.Errorf("-port %d is not a TCP port; use 1-65535", port)
	case port != 0:
		cfg.listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	switch {
	case cfg.name == "":
		return config{}, errors.New("-name is empty; name the app, e.g. -name green")
	case !(cfg.failRate >= 0 && cfg.failRate <= 1): // also rejects NaN
		return config{}, fmt.Errorf("-fail-rate %v is not a share; use 0 to 1, e.g. 0.05", cfg.failRate)
	case cfg.delay < 0:
		return config{}, fmt.Errorf("-delay %v is negative", cfg.delay)
	case cfg.startup < 0:
		return config{}, fmt.Errorf("-startup %v is negative", cfg.startup)
	case cfg.grace <= 0:
		return config{}, fmt.Errorf("-grace %v must be positive, e.g. 10s", cfg.grace)
	}
	return cfg, nil
}

// serve answers on ln until ctx is done, then shuts down gracefully: in-flight requests get
// cfg.grace to finish, streams are ended at once.
func serve(ctx context.Context, ln net.Listener, cfg config, log *slog.Logger) error {
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return fmt.Errorf("listener address %q: %w", ln.Addr(), err)
	}
	stopping := make(chan struct{})
	a := newApp(cfg, port, stopping, time.Now)
	srv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No write timeout: /slow, /events and /ws run as long as asked.
	}
	// Shutdown neither waits for nor closes hijacked connections (WebSockets) and would wait
	// for endless event streams until the grace ran out; closing stopping ends both.
	srv.RegisterOnShutdown(func() { close(stopping) })

	log.Info("demo app listening", "name", cfg.name, "addr", ln.Addr().String(),
		"startup", cfg.startup, "fail_rate", cfg.failRate, "delay", cfg.delay, "unhealthy", cfg.unhealthy)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "name", cfg.name, "grace", cfg.grace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.grace)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served // Serve returns ErrServerClosed as soon as Shutdown starts.
	if err != nil {
		srv.Close()
		log.Warn("grace ran out; closed the remaining connections", "name", cfg.name, "grace", cfg.grace)
	}
	a.waitStreams(sctx)
	log.Info("stopped", "name", cfg.name)
	return nil
}
