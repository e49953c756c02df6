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
// from the routied this one replaced).
func startControl(l net.Listener, c conf.Control, sw *switcher.Switcher, log *slog.Logger, opts ...control.Option) *controlServer {
	cs := &controlServer{srv: control.NewServer(sw, log, opts...), done: make(chan struct{})}
	go func() {
		defer close(cs.done)
		if err := cs.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket failed; routiectl cannot reach routied", "socket", c.Socket, "err", err)
		}
	}()
	return cs
}

// stop closes the socket and waits for requests on it, up to ctx; a switch still streaming
// is cut then.
func (cs *controlServer) stop(ctx context.Context) {
	if err := cs.srv.Shutdown(ctx); err != nil {
		cs.srv.Close()
	}
	<-cs.done
}
