package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/routie/routie/switcher"
)

// Canary routes.
//
//	POST /v1/canary         CanaryRequest       → NDJSON stream of StreamLine (health gate,
//	                                              then the canary takes its weight)
//	POST /v1/canary/weight  CanaryWeightRequest → switcher.Report
//	POST /v1/promote        PromoteRequest      → NDJSON stream of StreamLine (one probe,
//	                                              swap, drain of the old active target)
//	POST /v1/canary/abort   (empty body)        → NDJSON stream of StreamLine (the canary's
//	                                              clients go back, its drain)
const (
	PathCanary       = "/v1/canary"
	PathCanaryWeight = "/v1/canary/weight"
	PathPromote      = "/v1/promote"
	PathCanaryAbort  = "/v1/canary/abort"
)

// CanaryRequest is the body of POST /v1/canary: {"target":"8081","weight":5}.
type CanaryRequest struct {
	// Target is a port ("8081") or host:port ("127.0.0.1:8081"). Required.
	Target string `json:"target"`
	// Weight is the canary's share of the clients in percent, 1 to 99. Required.
	Weight int `json:"weight"`
	// Wait overrides health.wait for the health gate when positive. Default 0: health.wait.
	Wait Duration `json:"wait,omitempty"`
	// Force skips the health gate. Default false.
	Force bool `json:"force,omitempty"`
}

// CanaryWeightRequest is the body of POST /v1/canary/weight: {"weight":25}.
type CanaryWeightRequest struct {
	// Weight is the running canary's new share in percent, 1 to 99. Required.
	Weight int `json:"weight"`
}

// PromoteRequest is the body of POST /v1/promote: {"force":false}. An empty body is the
// zero value.
type PromoteRequest struct {
	// Force skips the probe of the canary. Default false.
	Force bool `json:"force,omitempty"`
}

const (
	canaryExample  = `send {"target": "8081", "weight": 5}, optionally with "wait": "30s" and "force": true`
	weightExample  = `send {"weight": 25}, a percentage from 1 to 99`
	promoteExample = `send {"force": false} or an empty body`
	abortExample   = `send an empty body or {}`
)

func (h *handler) canaryRoutes() []route {
	return []route{
		{http.MethodPost, PathCanary, h.canary},
		{http.MethodPost, PathCanaryWeight, h.canaryWeight},
		{http.MethodPost, PathPromote, h.promote},
		{http.MethodPost, PathCanaryAbort, h.abortCanary},
	}
}

func (h *handler) canary(w http.ResponseWriter, r *http.Request) {
	var req CanaryRequest
	if e := decodeBody(w, r, &req, false, canaryExample); e != nil {
		writeError(w, e)
		return
	}
	switch {
	case req.Target == "":
		writeError(w, badRequest(`missing "target"; `+canaryExample))
		return
	case req.Weight == 0:
		writeError(w, badRequest(`missing "weight"; `+canaryExample))
		return
	case req.Weight < 1 || req.Weight > 99:
		writeError(w, errorFor(&switcher.WeightError{Weight: req.Weight}))
		return
	case req.Wait < 0:
		writeError(w, badRequest(fmt.Sprintf(`"wait": %s is negative; send a positive duration such as "30s", or leave it out to use health.wait`, time.Duration(req.Wait))))
		return
	}
	log := h.log.With(append([]any{"target", req.Target, "weight", req.Weight}, peerAttrs(r.Context())...)...)
	log.Info("canary requested", "wait", time.Duration(req.Wait), "force", req.Force)
	h.stream(w, r, log, "canary", "started", func(opts switcher.SwitchOptions) (switcher.Report, error) {
		opts.Wait, opts.Force = time.Duration(req.Wait), req.Force
		return h.sw.Canary(r.Context(), req.Target, req.Weight, opts)
	})
}

func (h *handler) canaryWeight(w http.ResponseWriter, r *http.Request) {
	var req CanaryWeightRequest
	if e := decodeBody(w, r, &req, false, weightExample); e != nil {
		writeError(w, e)
		return
	}
	if req.Weight == 0 {
		writeError(w, badRequest(`missing "weight"; `+weightExample))
		return
	}
	if req.Weight < 1 || req.Weight > 99 {
		writeError(w, errorFor(&switcher.WeightError{Weight: req.Weight}))
		return
	}
	log := h.log.With(append([]any{"weight", req.Weight}, peerAttrs(r.Context())...)...)
	rep, err := h.sw.SetCanaryWeight(req.Weight)
	if err != nil {
		e := errorFor(err)
		log.Warn("canary weight not changed", "outcome", e.Kind, "err", err)
		writeError(w, e)
		return
	}
	outcome := "changed"
	if rep.NoOp {
		outcome = "noop"
	}
	log.Info("canary weight done", "outcome", outcome, "canary", rep.To)
	writeJSON(w, http.StatusOK, rep)
}

func (h *handler) promote(w http.ResponseWriter, r *http.Request) {
	var req PromoteRequest
	if e := decodeBody(w, r, &req, true, promoteExample); e != nil {
		writeError(w, e)
		return
	}
	log := h.log.With(peerAttrs(r.Context())...)
	log.Info("promote requested", "force", req.Force)
	h.stream(w, r, log, "promote", "switched", func(opts switcher.SwitchOptions) (switcher.Report, error) {
		opts.Force = req.Force
		return h.sw.Promote(r.Context(), opts)
	})
}

func (h *handler) abortCanary(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if e := decodeBody(w, r, &req, true, abortExample); e != nil {
		writeError(w, e)
		return
	}
	log := h.log.With(peerAttrs(r.Context())...)
	log.Info("canary abort requested")
	h.stream(w, r, log, "canary abort", "aborted", func(opts switcher.SwitchOptions) (switcher.Report, error) {
		return h.sw.AbortCanary(r.Context(), opts)
	})
}

// Canary asks routied to send req.Weight percent of the clients to req.Target once it passes
// its health gate, calling onEvent with each step as Switch does.
func (c *Client) Canary(ctx context.Context, req CanaryRequest, onEvent func(switcher.Event)) (switcher.Report, error) {
	return c.stream(ctx, PathCanary, req, onEvent)
}

// SetCanaryWeight changes the running canary's share to weight percent.
func (c *Client) SetCanaryWeight(ctx context.Context, weight int) (switcher.Report, error) {
	resp, err := c.do(ctx, http.MethodPost, PathCanaryWeight, CanaryWeightRequest{Weight: weight})
	if err != nil {
		return switcher.Report{}, err
	}
	defer resp.Body.Close()
	var rep switcher.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return rep, fmt.Errorf("reading routied's answer: %w", err)
	}
	return rep, nil
}

// Promote asks routied to make the canary active, as Switch does.
func (c *Client) Promote(ctx context.Context, req PromoteRequest, onEvent func(switcher.Event)) (switcher.Report, error) {
	return c.stream(ctx, PathPromote, req, onEvent)
}

// AbortCanary asks routied to send the canary's clients back to the active target; it
// answers once the canary's requests in flight are done.
func (c *Client) AbortCanary(ctx context.Context, onEvent func(switcher.Event)) (switcher.Report, error) {
	return c.stream(ctx, PathCanaryAbort, struct{}{}, onEvent)
}
