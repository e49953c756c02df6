package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"strings"
	"time"

	"github.com/routie/routie/health"
	"github.com/routie/routie/switcher"
)

// Switcher is what the control API drives; *switcher.Switcher implements it.
type Switcher interface {
	// Switch makes target active; opts.Progress receives each step.
	Switch(ctx context.Context, target string, opts switcher.SwitchOptions) (switcher.Report, error)
	// Rollback makes the standby active again; it uses opts.Force and opts.Progress.
	Rollback(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error)
	// Status is a snapshot.
	Status() switcher.Status
	// Probe checks target once; the error is a *switcher.TargetError for bad input.
	Probe(ctx context.Context, target string) (health.Result, error)
	// Canary sends weight percent of the clients to target once it passes the health gate.
	Canary(ctx context.Context, target string, weight int, opts switcher.SwitchOptions) (switcher.Report, error)
	// SetCanaryWeight changes the running canary's share.
	SetCanaryWeight(weight int) (switcher.Report, error)
	// Promote makes the canary active; the old active target drains and stands by.
	Promote(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error)
	// AbortCanary sends the canary's clients back to the active target and drains it.
	AbortCanary(ctx context.Context, opts switcher.SwitchOptions) (switcher.Report, error)
}

// Certificates is what the certs routes report and renew; cmd/routied adapts its tls
// certificates to it.
type Certificates interface {
	// Certs describes the certificate served for each name now.
	Certs() []CertStatus
	// Renew replaces the certificate for name now and returns its new status once it is
	// served. An *Error is answered as it is (a name that is not served is a 400
	// bad_request); any other error, such as the CA's refusal, is a 500 internal.
	Renew(ctx context.Context, name string) (CertStatus, error)
}

// Option adds an optional part of the API to NewHandler and NewServer.
type Option func(*handler)

// WithCertificates serves GET /v1/certs and POST /v1/certs/renew from c, and adds the
// certificates to GET /v1/status.
func WithCertificates(c Certificates) Option {
	return func(h *handler) { h.certs = c }
}

// maxBody bounds a request body; every valid one is well under 100 bytes.
const maxBody = 64 << 10

// What to send instead, quoted in every 400 about a body.
const (
	switchExample   = `send {"target": "8081"}, optionally with "wait": "30s" and "force": true`
	rollbackExample = `send {"force": false} or an empty body`
	healthExample   = `send {"target": "8081"}`
	renewExample    = `send {"name": "example.com"}, a name of tls.domains`
)

// handler serves the control API. Its zero value is not usable; call NewHandler.
type handler struct {
	sw       Switcher
	certs    Certificates // nil without WithCertificates
	deployer Deployer     // nil without WithDeployer
	upgrader Upgrader     // nil without WithUpgrader
	log      *slog.Logger
	routes   []route
}

type route struct {
	method, path string
	serve        func(http.ResponseWriter, *http.Request)
}

// NewHandler returns the control API for sw. It logs every switch and rollback to log with
// the target, the outcome and, when served by NewServer's server, the asking process's uid and
// pid.
func NewHandler(sw Switcher, log *slog.Logger, opts ...Option) http.Handler {
	h := &handler{sw: sw, log: log}
	for _, o := range opts {
		o(h)
	}
	h.routes = []route{
		{http.MethodGet, PathStatus, h.status},
		{http.MethodPost, PathSwitch, h.switchTarget},
		{http.MethodPost, PathRollback, h.rollback},
		{http.MethodPost, PathHealth, h.health},
		{http.MethodGet, PathVersion, h.version},
	}
	h.routes = append(h.routes, h.canaryRoutes()...)
	if h.certs != nil {
		h.routes = append(h.routes,
			route{http.MethodGet, PathCerts, h.listCerts},
			route{http.MethodPost, PathRenew, h.renewCert})
	}
	if h.deployer != nil {
		h.routes = append(h.routes, h.deployRoutes()...)
	}
	if h.upgrader != nil {
		h.routes = append(h.routes, route{http.MethodPost, PathUpgrade, h.upgrade})
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, rt := range h.routes {
		if rt.path != r.URL.Path {
			continue
		}
		if rt.method == r.Method {
			rt.serve(w, r)
			return
		}
		allow = append(allow, rt.method)
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, &Error{
			Kind:    KindMethodNotAllowed,
			Message: fmt.Sprintf("%s %s: method not allowed; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")),
			Status:  http.StatusMethodNotAllowed,
		})
		return
	}
	list := make([]string, len(h.routes))
	for i, rt := range h.routes {
		list[i] = rt.method + " " + rt.path
	}
	writeError(w, &Error{
		Kind:    KindNotFound,
		Message: fmt.Sprintf("no route %s %s; the routes are %s", r.Method, r.URL.Path, strings.Join(list, ", ")),
		Status:  http.StatusNotFound,
	})
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	s := StatusResponse{Status: h.sw.Status(), Version: Version, PID: os.Getpid()}
	if h.certs != nil {
		s.Certs = h.certs.Certs()
	}
	if h.deployer != nil {
		s.Deploy = h.deployer.Current()
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handler) listCerts(w http.ResponseWriter, r *http.Request) {
	certs := h.certs.Certs()
	if certs == nil {
		certs = []CertStatus{} // "certs": [] rather than null, for scripts
	}
	writeJSON(w, http.StatusOK, CertsResponse{Certs: certs})
}

// renewCert renews one certificate and answers when the new one is served: seconds with a
// CA that is up. The request's context ends when the client hangs up, which abandons the
// renewal.
func (h *handler) renewCert(w http.ResponseWriter, r *http.Request) {
	var req RenewRequest
	if e := decodeBody(w, r, &req, false, renewExample); e != nil {
		writeError(w, e)
		return
	}
	if req.Name == "" {
		writeError(w, badRequest(`missing "name"; `+renewExample))
		return
	}
	log := h.log.With(append([]any{"name", req.Name}, peerAttrs(r.Context())...)...)
	log.Info("certificate renewal requested")
	start := time.Now()
	st, err := h.certs.Renew(r.Context(), req.Name)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		e := errorFor(err)
		log.Warn("certificate renewal not done", "outcome", e.Kind, "took", took, "err", err)
		writeError(w, e)
		return
	}
	log.Info("certificate renewal done", "serial", st.Serial, "not_after", st.NotAfter, "took", took)
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, VersionResponse{Version: Version, Go: runtime.Version()})
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	var req HealthRequest
	if e := decodeBody(w, r, &req, false, healthExample); e != nil {
		writeError(w, e)
		return
	}
	if req.Target == "" {
		writeError(w, badRequest(`missing "target"; `+healthExample))
		return
	}
	res, err := h.sw.Probe(r.Context(), req.Target)
	if err != nil {
		writeError(w, errorFor(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) switchTarget(w http.ResponseWriter, r *http.Request) {
	var req SwitchRequest
	if e := decodeBody(w, r, &req, false, switchExample); e != nil {
		writeError(w, e)
		return
	}
	if req.Target == "" {
		writeError(w, badRequest(`missing "target"; `+switchExample))
		return
	}
	if req.Wait < 0 {
		writeError(w, badRequest(fmt.Sprintf(`"wait": %s is negative; send a positive duration such as "30s", or leave it out to use health.wait`, time.Duration(req.Wait))))
		return
	}
	log := h.log.With(append([]any{"target", req.Target}, peerAttrs(r.Context())...)...)
	log.Info("switch requested", "wait", time.Duration(req.Wait), "force", req.Force)
	h.stream(w, r, log, "switch", "switched", func(opts switcher.SwitchOptions) (switcher.Report, error) {
		opts.Wait, opts.Force = time.Duration(req.Wait), req.Force
		return h.sw.Switch(r.Context(), req.Target, opts)
	})
}

func (h *handler) rollback(w http.ResponseWriter, r *http.Request) {
	var req RollbackRequest
	if e := decodeBody(w, r, &req, true, rollbackExample); e != nil {
		writeError(w, e)
		return
	}
	log := h.log.With(peerAttrs(r.Context())...)
	log.Info("rollback requested", "force", req.Force, "start", req.Start)
	if req.Start && h.deployer == nil {
		writeError(w, badRequest(`"start": this routied runs no deploys, so it has no deploy.start to run; start the standby yourself and send {"force": false}`))
		return
	}
	h.stream(w, r, log, "rollback", "switched", func(opts switcher.SwitchOptions) (switcher.Report, error) {
		opts.Force = req.Force
		if req.Start {
			return h.deployer.RollbackStart(r.Context(), opts)
		}
		return h.sw.Rollback(r.Context(), opts)
	})
}

// stream runs a switch, rollback or canary operation, streaming its events as NDJSON, and
// logs the outcome: done when it went through, "noop" when nothing changed, else the error's
// kind.
func (h *handler) stream(w http.ResponseWriter, r *http.Request, log *slog.Logger, what, done string, run func(switcher.SwitchOptions) (switcher.Report, error)) {
	p := newProgress(w)
	defer p.close()
	start := time.Now()
	rep, err := run(switcher.SwitchOptions{Progress: p.event})
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		e := errorFor(err)
		level := slog.LevelWarn
		if e.Kind == KindInternal {
			level = slog.LevelError
		}
		log.Log(r.Context(), level, what+" not done", "outcome", e.Kind, "took", took, "err", err)
		p.fail(e)
		return
	}
	outcome := done
	if rep.NoOp {
		outcome = "noop"
	}
	attrs := []any{"outcome", outcome, "from", rep.From, "to", rep.To, "forced", rep.Forced, "took", took}
	if rep.Weight > 0 {
		attrs = append(attrs, "weight", rep.Weight)
	}
	log.Info(what+" done", attrs...)
	p.result(rep)
}

// decodeBody reads r's JSON body into v. An empty body leaves v as is when emptyOK. The
// returned error says what was wrong and, with example, what to send instead.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool, example string) *Error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		return badRequest("unexpected data after the JSON object; " + example)
	}
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		durErr    *durationError
		sizeErr   *http.MaxBytesError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		if emptyOK {
			return nil
		}
		return badRequest("empty body; " + example)
	case errors.As(err, &sizeErr):
		return badRequest(fmt.Sprintf("body larger than %d bytes; %s", sizeErr.Limit, example))
	case errors.As(err, &syntaxErr):
		return badRequest(fmt.Sprintf("malformed JSON at byte %d: %v; %s", syntaxErr.Offset, syntaxErr, example))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: the body ends inside a value; " + example)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest(fmt.Sprintf("the body must be a JSON object, not %s; %s", article(typeErr.Value), example))
		}
		return badRequest(fmt.Sprintf("%q must be %s, not %s; %s", typeErr.Field, describeType(typeErr.Type), article(typeErr.Value), example))
	case errors.As(err, &durErr):
		return badRequest(`"wait": ` + durErr.Error())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this error; its text is stable.
		return badRequest(strings.TrimPrefix(err.Error(), "json: ") + "; " + example)
	}
	return badRequest(fmt.Sprintf("cannot read the body: %v; %s", err, example))
}

func describeType(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return `a duration string such as "30s"`
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int:
		return "a whole number"
	case t.Kind() == reflect.Struct:
		return "an object"
	}
	return t.String()
}

// article puts "a" or "an" before a JSON kind from a json.UnmarshalTypeError ("an array").
func article(kind string) string {
	if strings.ContainsAny(kind[:min(1, len(kind))], "aeiou") {
		return "an " + kind
	}
	return "a " + kind
}

// writeJSON writes v as an indented JSON answer, easy to read from curl.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to tell it
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, StreamLine{Error: e})
}
