// Command routiectl controls a running routied over its control socket: switch the active
// target, roll back, and show status and health.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/routie/routie/control"
)

// defaultSocket is routied's default control.socket.
const defaultSocket = "/run/routie/control.sock"

const usage = `routiectl controls routied, the reverse proxy that moves an app between two ports
without dropping a request.

Usage: routiectl [--socket PATH] SUBCOMMAND [ARGS]

Subcommands:
  switch TARGET   make TARGET active once it passes its health gate
  rollback        make the standby (the previous target) active again
  canary TARGET --weight N
                  send N% of the clients to TARGET, the rest to the active target;
                  canary --weight N changes the share
  promote         make the canary active; the old active target drains and stands by
  abort           drop the canary: its clients go back, it drains
  status          show the active and standby targets, their health and load
  health TARGET   probe TARGET once, as a switch does
  deploy          start, health-check, switch to, watch and keep the new version, with
                  automatic rollback; deploy --abort
  history         past deploys: when, who, from → to, result and why
  certs           show each name's certificate and when it expires; certs renew NAME
  upgrade         replace routied with the binary on disk without refusing a connection
  version         show the routiectl and routied versions

Flags:
  --socket PATH   routied's control socket
                  (default $ROUTIE_SOCKET, else /run/routie/control.sock)

Exit status: 0 done (including a switch to the target already active), 1 refused or
failed, 2 usage error.

Example, deploying a new version on port 8081 while 8080 serves:
  systemctl start app@8081
  routiectl switch 8081 && systemctl stop app@8080

Example, the same through a canary on 5% of the clients first:
  routiectl canary 8081 --weight 5
  routiectl promote && systemctl stop app@8080

Run routiectl SUBCOMMAND -h for a subcommand's flags and examples.
`

// command is one subcommand.
type command struct {
	usage string
	run   func(ctx context.Context, c *cli, args []string) error
}

var commands = map[string]command{
	"switch":   {switchUsage, runSwitch},
	"rollback": {rollbackUsage, runRollback},
	"canary":   {canaryUsage, runCanary},
	"promote":  {promoteUsage, runPromote},
	"abort":    {abortUsage, runAbort},
	"status":   {statusUsage, runStatus},
	"health":   {healthUsage, runHealth},
	"certs":    {certsUsage, runCerts},
	"deploy":   {deployUsage, runDeploy},
	"history":  {historyUsage, runHistory},
	"upgrade":  {upgradeUsage, runUpgrade},
	"version":  {versionUsage, runVersion},
}

func main() {
	// Ctrl-C cancels the request in flight; for a switch, routied then aborts its health gate.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is what every subcommand shares.
type cli struct {
	stdout, stderr io.Writer
	// socket is the control socket, from --socket, $ROUTIE_SOCKET or defaultSocket.
	socket string
	// color is true when stdout is a terminal that takes colours.
	color bool
}

func (c *cli) client() *control.Client { return control.NewClient(c.socket) }

// run runs routiectl with args and returns its exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, color: colorful(stdout)}
	return c.exit(c.dispatch(ctx, args))
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	socket := os.Getenv("ROUTIE_SOCKET")
	if socket == "" {
		socket = defaultSocket
	}
	fs := flag.NewFlagSet("routiectl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.socket, "socket", socket, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, usage)
			return errHelpShown
		}
		return &usageError{message: flagMessage(err), hint: "routiectl --help"}
	}
	if fs.NArg() == 0 {
		return &usageError{message: "missing subcommand", hint: "routiectl status, or routiectl --help for every subcommand"}
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		return c.help(rest)
	}
	cmd, ok := commands[name]
	if !ok {
		return &usageError{message: fmt.Sprintf("unknown subcommand %q", name), hint: "routiectl --help"}
	}
	return cmd.run(ctx, c, rest)
}

// help serves `routiectl help [SUBCOMMAND]`.
func (c *cli) help(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stdout, usage)
		return errHelpShown
	}
	cmd, ok := commands[args[0]]
	if !ok || len(args) > 1 {
		return &usageError{message: fmt.Sprintf("no help for %q", strings.Join(args, " ")), hint: "routiectl --help"}
	}
	fmt.Fprint(c.stdout, cmd.usage)
	return errHelpShown
}

// flagSet returns a subcommand's flag set, with --socket, which may also follow the
// subcommand.
func (c *cli) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.socket, "socket", c.socket, "")
	return fs
}

// parse parses fs's flags wherever they appear among args, so that `switch 8081 --wait 10s`
// works as well as `switch --wait 10s 8081`, and returns the other arguments. "--" ends the
// flags. -h prints usage.
func (c *cli) parse(fs *flag.FlagSet, args []string, usage string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(c.stdout, usage)
				return nil, errHelpShown
			}
			return nil, &usageError{message: flagMessage(err), hint: "routiectl " + fs.Name() + " -h"}
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	if c.socket == "" {
		return nil, &usageError{message: "--socket is empty", hint: "routiectl --socket " + defaultSocket + " " + fs.Name()}
	}
	return positional, nil
}

// flagMessage rewords the flag package's errors for an operator.
func flagMessage(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return "unknown flag " + name
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "--" + name + " needs a value"
	}
	return strings.Replace(msg, " for flag -", " for --", 1)
}

// durationFlag is a positive duration flag whose error says what to write.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration; write a number with a unit, such as 30s or 2m")
	}
	if v <= 0 {
		return errors.New("must be positive, such as 30s or 2m")
	}
	*d = durationFlag(v)
	return nil
}

// errHelpShown ends a run that printed help: exit 0.
var errHelpShown = errors.New("help shown")

// usageError is a command line routiectl cannot run: exit 2, with a hint of what to type.
type usageError struct {
	message string
	hint    string
}

func (e *usageError) Error() string { return e.message }

// hintError is a failure with a next step for the operator: exit 1.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// exitError ends a run whose output already said what happened.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exit prints err as the operator needs it and returns the exit status.
func (c *cli) exit(err error) int {
	var (
		ue *usageError
		he *hintError
		ee exitError
	)
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "Error: %s\nTry: %s\n", ue.message, ue.hint)
		return 2
	case errors.As(err, &he):
		fmt.Fprintf(c.stderr, "Error: %s\n", he.err)
		if he.hint != "" {
			fmt.Fprintf(c.stderr, "Try: %s\n", he.hint)
		}
	default:
		fmt.Fprintf(c.stderr, "Error: %s\n", err)
	}
	return 1
}

// badInput turns routied's 400 for a target it cannot parse into a usage error: routied parses
// targets (it knows upstream.host), but a bad one is still the caller's mistake.
func badInput(err error, hint string) error {
	var ce *control.Error
	if errors.As(err, &ce) && (ce.Kind == control.KindBadTarget || ce.Kind == control.KindBadRequest) {
		return &usageError{message: ce.Message, hint: hint}
	}
	return err
}
