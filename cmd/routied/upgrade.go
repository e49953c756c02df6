package main

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/cloudflare/tableflip"
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
}

// upgradeTimeout bounds how long a new routied may take to become ready before the upgrade
// is abandoned and the old process keeps serving.
const upgradeTimeout = time.Minute

func newUpgrader(pidFile string) (*upgrader, error) {
	upg, err := tableflip.New(tableflip.Options{PIDFile: pidFile, UpgradeTimeout: upgradeTimeout})
	if err != nil {
		return nil, fmt.Errorf("cannot prepare for zero-downtime upgrades: %w", err)
	}
	return &upgrader{upg}, nil
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

// upgrade starts the binary on disk and waits for it to be ready. A failure is logged and
// this process keeps serving.
func (u *upgrader) upgrade(log *slog.Logger) {
	log.Info("upgrade requested (SIGHUP): starting the routied binary on disk")
	if err := u.Upgrade(); err != nil {
		log.Error("upgrade failed; this routied keeps serving", "err", err)
	}
}
