package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells systemd (Type=notify) what routied is doing: READY=1 once it serves,
// STOPPING=1 when it stops for good, and watchdog pings while it runs. Without NOTIFY_SOCKET
// (not under systemd) every call is a no-op.
type notifier struct {
	log *slog.Logger
}

func (n notifier) send(state string) {
	// false: keep NOTIFY_SOCKET in the environment, so an upgraded routied can notify too.
	if _, err := sdnotify.SdNotify(false, state); err != nil {
		n.log.Warn("cannot notify systemd", "state", state, "err", err)
	}
}

// ready says routied serves. MAINPID names this process, so that after an upgrade systemd
// follows the new routied rather than the one that is leaving.
func (n notifier) ready() { n.send(fmt.Sprintf("MAINPID=%d\nREADY=1", os.Getpid())) }

// stopping says routied is going away for good (not for an upgrade).
func (n notifier) stopping() { n.send("STOPPING=1") }

// watchdogInterval returns how often systemd wants a ping (half of WatchdogSec=), or 0.
// systemd sets WATCHDOG_PID to the process it started; an upgraded routied inherits the
// variable with the old pid, so upgraded says to ping anyway: it is the main process now.
func watchdogInterval(upgraded bool) time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) && !upgraded {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// watchdog pings systemd every interval until ctx ends.
func (n notifier) watchdog(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n.send("WATCHDOG=1")
		}
	}
}
