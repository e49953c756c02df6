package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// PathUpgrade is the route of a zero-downtime upgrade.
const PathUpgrade = "/v1/upgrade"

// UpgradeResponse is the answer to POST /v1/upgrade once the new routied serves:
// {"old_pid":1234,"new_pid":5678}.
type UpgradeResponse struct {
	// OldPID is the routied that answered: it now finishes its in-flight requests and exits.
	OldPID int `json:"old_pid"`
	// NewPID is the routied that took over the sockets; 0 when routied runs without -pidfile
	// and so cannot tell.
	NewPID int `json:"new_pid,omitempty"`
}

// Upgrader replaces the running daemon with the binary on disk; cmd/routied adapts its
// tableflip upgrader to it.
type Upgrader interface {
	// Upgrade starts the binary on disk with the listening sockets and returns once that
	// process is ready and serving. An error means the new process did not become ready
	// (it exited, or timed out), and this one keeps serving; it is answered as a 500
	// upgrade_failed.
	Upgrade(ctx context.Context) (UpgradeResponse, error)
}

// WithUpgrader serves POST /v1/upgrade from u, so that `systemctl reload` (which runs
// `routiectl upgrade`) learns whether the new binary took over, instead of only sending a
// signal and reporting success whatever happens.
func WithUpgrader(u Upgrader) Option {
	return func(h *handler) { h.upgrader = u }
}

func (h *handler) upgrade(w http.ResponseWriter, r *http.Request) {
	log := h.log.With(peerAttrs(r.Context())...)
	log.Info("upgrade requested: starting the routied binary on disk")
	resp, err := h.upgrader.Upgrade(r.Context())
	if err != nil {
		e := errorFor(err)
		if e.Kind == KindInternal {
			e = &Error{Kind: KindUpgradeFailed, Message: err.Error(), Status: http.StatusInternalServerError}
		}
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// Upgrade asks routied to replace itself with the binary on disk, and returns once the new
// process serves (or with its *Error, kind upgrade_failed, when it did not take over and the
// old one keeps serving). It takes as long as the new process needs to start, up to a minute.
func (c *Client) Upgrade(ctx context.Context) (UpgradeResponse, error) {
	var u UpgradeResponse
	resp, err := c.do(ctx, http.MethodPost, PathUpgrade, nil)
	if err != nil {
		return u, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		return u, fmt.Errorf("reading routied's upgrade answer: %w", err)
	}
	return u, nil
}
