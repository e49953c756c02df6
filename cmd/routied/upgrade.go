package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/tableflip"

	"github.com/routie/routie/control"
)

// upgrader replaces the running routied with the binary on disk without closing a listening
// socket: on SIGHUP it starts the new process with the sockets, waits until that one is
// ready, and then this one stops accepting and drains. tableflip does the handing over.
//
// Why tableflip and not systemd socket activation: with socket activation systemd keeps the
// sockets, but a restart still stops the old process before starting the new one, so for the
// time the new one needs to start (loading state and certificates) nobody accepts. With
// tableflip the old process serves until the new one says it is ready, and a new binary that
// fails to start leaves the old one serving.
type upgrader struct {
	*tableflip.Upgrader
	pidFile string
	log     *slog.Logger
}

// upgradeTimeout bounds how long a new routied may take to become ready before the upgrade
// is abandoned and the old process keeps serving.
const upgradeTimeout = time.Minute

func newUpgrader(pidFile string, log *slog.Logger) (*upgrader, error) {
	upg, err := tableflip.New(tableflip.Options{PIDFile: pidFile, UpgradeTimeout: upgradeTimeout})
	if err != nil {
		return nil, fmt.Errorf("cannot prepare for zero-downtime upgrades: %w", err)
	}
	return &upgrader{Upgrader: upg, pidFile: pidFile, log: log}, nil
}

// listen returns the listener for network/addr that the previous routied handed over, or a
// new one from open.
func (u *upgrader) listen(network, addr string, open func() (net.Listener, error)) (net.Listener, error) {
	ln, err := u.Fds.ListenWithCallback(network, addr, func(string, string) (net.Listener, error) { return open() })
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// onSignal upgrades on SIGHUP, where nobody waits for the outcome but the log, and runs
// handedOver once the new routied serves.
func (u *upgrader) onSignal(handedOver func()) {
	u.log.Info("upgrade requested (SIGHUP): starting the routied binary on disk")
	u.upgrade(handedOver)
}

// upgrade starts the binary on disk and waits for it to be ready, then runs handedOver. A
// failure is logged and this process keeps serving.
func (u *upgrader) upgrade(handedOver func()) (control.UpgradeResponse, error) {
	resp := control.UpgradeResponse{OldPID: os.Getpid()}
	if err := u.Upgrade(); err != nil {
		err = explainUpgradeError(err, resp.OldPID)
		u.log.Error("upgrade failed", "err", err)
		return resp, err
	}
	// The new process wrote its PID before saying it was ready.
	if u.pidFile != "" {
		if data, err := os.ReadFile(u.pidFile); err == nil {
			resp.NewPID, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
	}
	handedOver()
	return resp, nil
}

// controlUpgrader is the upgrader as the control socket's POST /v1/upgrade sees it.
type controlUpgrader struct {
	u *upgrader
	// handedOver runs once the new routied serves, before the answer is sent.
	handedOver func()
}

func (c controlUpgrader) Upgrade(context.Context) (control.UpgradeResponse, error) {
	return c.u.upgrade(c.handedOver)
}

// explainUpgradeError says what a failed upgrade means for the operator. tableflip refuses
// some upgrades before starting anything; its errors for those are plain strings.
func explainUpgradeError(err error, pid int) error {
	switch err.Error() {
	case "parent hasn't exited":
		return fmt.Errorf("the routied this one (pid %d) replaced is still finishing its WebSockets and event streams (for up to drain.streams), and only one hand-over runs at a time; try again once it has exited (until then ps shows two routied processes)", pid)
	case "upgrade in progress":
		return fmt.Errorf("another upgrade of routied (pid %d) is in progress; wait for it", pid)
	case "process is not ready yet":
		return fmt.Errorf("routied (pid %d) is still starting; try again once it is ready", pid)
	case "already upgraded", "terminating":
		return fmt.Errorf("routied (pid %d) is stopping (%w); the process that replaced it, if any, takes upgrades", pid, err)
	}
	return fmt.Errorf("the new routied did not take over (%w); this one (pid %d) keeps serving; the new process's own words are in routied's log (journalctl -u routied)", err, pid)
}
