// Command routied is routie's daemon: the HTTPS front door that forwards to the active app
// port and switches ports with no dropped request. routiectl drives it over a unix socket.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/control"
)

const defaultConfig = "/etc/routie/routie.toml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `routied: the front door that switches app ports with zero dropped requests.

Usage:
  routied [-config FILE]          run the daemon
  routied -check [-config FILE]   validate FILE and print the effective config, like nginx -t
  routied -version                print the version

Flags:
  -config FILE   config file (default %s); every key has a default,
                 see conf/routie.example.toml
  -check         validate and print the effective config (secrets not shown), then exit
                 (0 valid, 1 invalid)
  -pidfile FILE  write the PID to FILE once ready; systemd's PIDFile= follows it across
                 zero-downtime upgrades
  -version       print the version and exit

Examples:
  routied -config /etc/routie/routie.toml
  routied -check -config /etc/routie/routie.toml && systemctl reload routied

Drive it with routiectl: routiectl switch 8081, routiectl rollback, routiectl status.
The config file is watched: a valid edit applies at once, an invalid one is refused and logged.

Signals:
  SIGTERM, SIGINT  stop accepting, finish in-flight requests (drain.timeout), exit 0;
                   a second one exits at once
  SIGHUP           zero-downtime upgrade: start the routied binary on disk with the
                   listening sockets, and hand over once it is ready (systemctl reload routied)
`

// run is main without os.Exit, so tests can call it. It returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routied", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, usage, defaultConfig) }
	configPath := fs.String("config", defaultConfig, "config file")
	pidFile := fs.String("pidfile", "", "write the PID here when ready (systemd's PIDFile=, followed across upgrades)")
	check := fs.Bool("check", false, "validate the config and print it")
	version := fs.Bool("version", false, "print the version")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "Error: unexpected argument %q\nTry: routied -config FILE (see routied -h)\n", fs.Arg(0))
		return 2
	}
	if *version {
		fmt.Fprintf(stdout, "routied %s\n", control.Version)
		return 0
	}

	cfg, err := conf.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "routied: invalid configuration:\n%v\n", err)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "Try: copy conf/routie.example.toml to %s, or pass -config FILE\n", *configPath)
		}
		return 1
	}
	if *check {
		fmt.Fprintf(stderr, "routied: %s is valid; the effective configuration:\n", *configPath)
		stdout.Write(cfg.Redacted().Encode())
		return 0
	}

	logs := newLogOutput(os.Stderr)
	logs.apply(cfg.Log)
	log := logs.logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := newDaemon(cfg, logs, log).run(ctx, *pidFile); err != nil {
		log.Error("routied stopped", "err", err)
		return 1
	}
	return 0
}
