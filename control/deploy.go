package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/routie/routie/deploy"
	"github.com/routie/routie/switcher"
)

// Deploy routes.
//
//	POST /v1/deploy        DeployRequest → NDJSON stream of DeployLine; hanging up only
//	                       stops following: the deploy goes on in routied
//	POST /v1/deploy/abort  (empty body) → DeployAbortResponse
//	GET  /v1/history       HistoryResponse
const (
	PathDeploy      = "/v1/deploy"
	PathDeployAbort = "/v1/deploy/abort"
	PathHistory     = "/v1/history"
)

// Deployer runs deploys inside routied; *deploy.Deployer implements it.
type Deployer interface {
	Start(req deploy.Request) (int, error)
	Follow(ctx context.Context, id int, onEvent func(deploy.Event)) (deploy.Record, error)
	Abort() (int, error)
	Current() *deploy.Status
	History() []deploy.Record
	RollbackStart(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error)
}

// WithDeployer serves the deploy routes from d and adds the deploy in progress to
// GET /v1/status.
func WithDeployer(d Deployer) Option {
	return func(h *handler) { h.deployer = d }
}

// DeployRequest is the body of POST /v1/deploy: {"to":"8081","no_start":false}, or for a
// canary deploy {"canary":[5,25,50],"step":"2m"}; all optional.
type DeployRequest struct {
	// To is the target to deploy to; "" picks the port of upstream.ports that is not active.
	To string `json:"to,omitempty"`
	// NoStart skips deploy.start: the new version was started by hand.
	NoStart bool `json:"no_start,omitempty"`
	// Canary, when not empty, walks the new version through these rising shares of the
	// clients (percent, 1 to 99), checking each, before promoting it. Default: none, a
	// switch at once.
	Canary []int `json:"canary,omitempty"`
	// Step is how long each canary step is watched, e.g. "2m". Default 0: deploy.monitor.
	Step Duration `json:"step,omitempty"`
}

// DeployLine is one line of the answer to POST /v1/deploy: an Event for every step, then
// Done with the final record, or Error.
type DeployLine struct {
	Event *deploy.Event  `json:"event,omitempty"`
	Done  *deploy.Record `json:"done,omitempty"`
	Error *Error         `json:"error,omitempty"`
}

// DeployAbortResponse answers POST /v1/deploy/abort.
type DeployAbortResponse struct {
	// ID is the deploy that was told to stop; it rolls back if it had switched.
	ID int `json:"id"`
}

// HistoryResponse answers GET /v1/history, oldest deploy first.
type HistoryResponse struct {
	Deploys []deploy.Record `json:"deploys"`
}

const deployExample = `send {} to deploy to the idle port, or {"to": "8081", "no_start": true}, or {"canary": [5, 25, 50], "step": "2m"}`

func (h *handler) deployRoutes() []route {
	return []route{
		{http.MethodPost, PathDeploy, h.startDeploy},
		{http.MethodPost, PathDeployAbort, h.abortDeploy},
		{http.MethodGet, PathHistory, h.history},
	}
}

func (h *handler) startDeploy(w http.ResponseWriter, r *http.Request) {
	var req DeployRequest
	if e := decodeBody(w, r, &req, true, deployExample); e != nil {
		writeError(w, e)
		return
	}
	who := fmt.Sprint(peerAttrs(r.Context())...)
	log := h.log.With(peerAttrs(r.Context())...)
	id, err := h.deployer.Start(deploy.Request{To: req.To, NoStart: req.NoStart, Canary: req.Canary, Step: time.Duration(req.Step), Who: who})
	if err != nil {
		e := deployError(err)
		log.Warn("deploy refused", "to", req.To, "err", err)
		writeError(w, e)
		return
	}
	log.Info("deploy started", "deploy", id, "to", req.To, "no_start", req.NoStart, "canary", req.Canary, "step", time.Duration(req.Step))
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	send := func(l DeployLine) {
		if enc.Encode(l) == nil {
			rc.Flush()
		}
	}
	rec, err := h.deployer.Follow(r.Context(), id, func(e deploy.Event) { send(DeployLine{Event: &e}) })
	if err != nil {
		// The client hung up: the deploy goes on without it.
		log.Info("deploy follower left; the deploy goes on", "deploy", id)
		return
	}
	send(DeployLine{Done: &rec})
}

func (h *handler) abortDeploy(w http.ResponseWriter, r *http.Request) {
	id, err := h.deployer.Abort()
	if err != nil {
		writeError(w, deployError(err))
		return
	}
	h.log.Info("deploy abort requested", append([]any{"deploy", id}, peerAttrs(r.Context())...)...)
	writeJSON(w, http.StatusOK, DeployAbortResponse{ID: id})
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	list := h.deployer.History()
	if list == nil {
		list = []deploy.Record{}
	}
	writeJSON(w, http.StatusOK, HistoryResponse{Deploys: list})
}

// deployError maps the deployer's refusals: another deploy running or none to abort is a 409,
// a request that cannot be served (bad target, no idle port) a 400.
func deployError(err error) *Error {
	switch {
	case errors.Is(err, deploy.ErrBusy):
		return &Error{Kind: KindInProgress, Message: err.Error(), Status: http.StatusConflict}
	case errors.Is(err, deploy.ErrNone):
		return &Error{Kind: "no_deploy", Message: err.Error(), Status: http.StatusConflict}
	}
	e := errorFor(err)
	if e.Kind == KindInternal {
		e = &Error{Kind: KindBadRequest, Message: err.Error(), Status: http.StatusBadRequest}
	}
	return e
}

// Deploy starts a deploy and follows it, calling onEvent for every step, until it ends; the
// final record says how. Cancelling ctx only stops following: the deploy goes on in routied.
func (c *Client) Deploy(ctx context.Context, req DeployRequest, onEvent func(deploy.Event)) (deploy.Record, error) {
	resp, err := c.do(ctx, http.MethodPost, PathDeploy, req)
	if err != nil {
		return deploy.Record{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var line DeployLine
		if err := dec.Decode(&line); err != nil {
			if ctx.Err() != nil {
				return deploy.Record{}, ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return deploy.Record{}, errors.New("routied ended the answer before the deploy finished (did it restart?); see routiectl history")
			}
			return deploy.Record{}, fmt.Errorf("reading routied's progress: %w", err)
		}
		switch {
		case line.Error != nil:
			return deploy.Record{}, line.Error
		case line.Done != nil:
			return *line.Done, nil
		case line.Event != nil && onEvent != nil:
			onEvent(*line.Event)
		}
	}
}

// AbortDeploy stops the deploy in progress and returns its ID.
func (c *Client) AbortDeploy(ctx context.Context) (int, error) {
	resp, err := c.do(ctx, http.MethodPost, PathDeployAbort, struct{}{})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out DeployAbortResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("reading routied's answer: %w", err)
	}
	return out.ID, nil
}

// History returns the past deploys, oldest first.
func (c *Client) History(ctx context.Context) ([]deploy.Record, error) {
	raw, err := c.get(ctx, PathHistory)
	if err != nil {
		return nil, err
	}
	var out HistoryResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("routied sent a history that does not parse: %w", err)
	}
	return out.Deploys, nil
}
