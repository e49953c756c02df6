package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/control"
	"github.com/routie/routie/switcher"
)

// controlServer is the unix-socket API routiectl talks to.
type controlServer struct {
	srv  *http.Server
	done chan struct{}
}

// startControl serves the control API on l, a listener from control.Listen (or inherited
// from the routied this one replaced). POST /v1/upgrade runs upg, and once the new routied
// serves, this one stops accepting on the socket before it answers, so that the next
// routiectl command (the caller's, or anyone's) reaches the new process.
func startControl(l net.Listener, c conf.Control, sw *switcher.Switcher, upg *upgrader, log *slog.Logger, opts ...control.Option) *controlServer {
	cs := &controlServer{done: make(chan struct{})}
	opts = append(opts, control.WithUpgrader(controlUpgrader{u: upg, handedOver: cs.stopAccepting}))
	cs.srv = control.NewServer(sw, log, opts...)
	go func() {
		defer close(cs.done)
		if err := cs.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket failed; routiectl cannot reach routied", "socket", c.Socket, "err", err)
		}
	}()
	return cs
}

// stopAccepting closes the socket's listener here (the new routied keeps its own) and
// returns; requests in flight go on, and stop waits for them.
func (cs *controlServer) stopAccepting() {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_ = cs.srv.Shutdown(done) // closes the listener, then returns at once: done has ended
}

// stop closes the socket and waits for requests on it, up to ctx; a switch still streaming
// is cut then.
func (cs *controlServer) stop(ctx context.Context) {
	if err := cs.srv.Shutdown(ctx); err != nil {
		cs.srv.Close()
	}
	<-cs.done
}
