package control

import (
	"context"
	"errors"
	"net/http"

	"github.com/routie/routie/switcher"
)

// Error kinds, the machine-readable part of an Error.
const (
	KindBadRequest       = "bad_request"        // 400: the body or a field is wrong
	KindBadTarget        = "bad_target"         // 400: the target does not parse
	KindNotFound         = "not_found"          // 404: no such route
	KindMethodNotAllowed = "method_not_allowed" // 405: wrong method for the route
	KindInProgress       = "in_progress"        // 409: another switch is health-gating
	KindNoStandby        = "no_standby"         // 409: nothing to roll back to
	KindStandbyStopped   = "standby_stopped"    // 409: a deploy stopped the standby's app
	KindCanaryRunning    = "canary_running"     // 409: a canary must end before this
	KindNoCanary         = "no_canary"          // 409: no canary to promote, abort or weigh
	KindAlreadyActive    = "already_active"     // 409: a canary of the active target
	KindRefused          = "refused"            // 422: the health gate failed
	KindCancelled        = "cancelled"          // 503: the request went away before the end
	KindUpgradeFailed    = "upgrade_failed"     // 500: the new binary did not take over
	KindInternal         = "internal"           // 500: anything else
)

// Error is an error answer from routied: {"error":{"kind":"refused","message":"…","status":422}}.
// The Client returns daemon errors as *Error.
//
// Every error the control API answers goes through one mapping (errorFor):
//
//	error                                         status  kind
//	malformed JSON, unknown field, missing or     400     bad_request (says what to send)
//	  bad "target"/"wait", trailing data
//	*switcher.TargetError                         400     bad_target
//	*switcher.WeightError (not 1 to 99)           400     bad_request
//	unknown route                                 404     not_found (lists the routes)
//	wrong method                                  405     method_not_allowed (with Allow)
//	*switcher.InProgressError                     409     in_progress
//	switcher.ErrNoStandby                         409     no_standby
//	*switcher.StoppedError                        409     standby_stopped
//	*switcher.CanaryRunningError                  409     canary_running
//	switcher.ErrNoCanary                          409     no_canary
//	*switcher.ActiveTargetError                   409     already_active
//	*switcher.RefusedError                        422     refused
//	a failed upgrade (POST /v1/upgrade)           500     upgrade_failed
//	context.Canceled, context.DeadlineExceeded    503     cancelled
//	anything else                                 500     internal
//
// An error before a switch's first event is a plain JSON answer with that status; after it,
// the stream has already said 200 and the error is its last line, with the status it would
// have had. A cancelled switch's client has usually gone away already; that row exists so the
// log's outcome says "cancelled" rather than "internal".
type Error struct {
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// Message says, for the operator, what happened and what to do.
	Message string `json:"message"`
	// Status is the HTTP status code. In a stream, whose header already said 200, it is the
	// status the error would have had on its own.
	Status int `json:"status"`
}

func (e *Error) Error() string { return e.Message }

// errorFor is the one mapping from errors to answers; the table is on Error.
func errorFor(err error) *Error {
	var (
		e          *Error
		targetErr  *switcher.TargetError
		inProgress *switcher.InProgressError
		refused    *switcher.RefusedError
		stopped    *switcher.StoppedError
		weight     *switcher.WeightError
		running    *switcher.CanaryRunningError
		active     *switcher.ActiveTargetError
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &targetErr):
		return &Error{Kind: KindBadTarget, Message: err.Error(), Status: http.StatusBadRequest}
	case errors.As(err, &weight):
		return &Error{Kind: KindBadRequest, Message: err.Error(), Status: http.StatusBadRequest}
	case errors.As(err, &inProgress):
		return &Error{Kind: KindInProgress, Message: err.Error(), Status: http.StatusConflict}
	case errors.Is(err, switcher.ErrNoStandby):
		return &Error{Kind: KindNoStandby, Message: err.Error(), Status: http.StatusConflict}
	case errors.As(err, &stopped):
		return &Error{Kind: KindStandbyStopped, Message: err.Error(), Status: http.StatusConflict}
	case errors.As(err, &running):
		return &Error{Kind: KindCanaryRunning, Message: err.Error(), Status: http.StatusConflict}
	case errors.Is(err, switcher.ErrNoCanary):
		return &Error{Kind: KindNoCanary, Message: err.Error(), Status: http.StatusConflict}
	case errors.As(err, &active):
		return &Error{Kind: KindAlreadyActive, Message: err.Error(), Status: http.StatusConflict}
	case errors.As(err, &refused):
		return &Error{Kind: KindRefused, Message: err.Error(), Status: http.StatusUnprocessableEntity}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: KindCancelled, Message: err.Error(), Status: http.StatusServiceUnavailable}
	}
	return &Error{Kind: KindInternal, Message: err.Error(), Status: http.StatusInternalServerError}
}

// badRequest is a 400 for a body the handler cannot use.
func badRequest(message string) *Error {
	return &Error{Kind: KindBadRequest, Message: message, Status: http.StatusBadRequest}
}
