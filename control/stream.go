package control

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/routie/routie/switcher"
)

// progress writes a switch's answer: NDJSON lines, each flushed as it is written. The header is
// written with the first line, so that an error before any event (bad target, a switch in
// progress, no standby) still gets a plain JSON answer with its own 4xx status.
type progress struct {
	mu sync.Mutex // guards all below: Progress runs on whatever goroutine the switcher chooses
	w  http.ResponseWriter
	rc *http.ResponseController
	// started is true once the 200 header and a first line are out.
	started bool
	// closed is true once the handler has returned; w is no longer ours to write to, so a
	// late event from a switcher goroutine is dropped rather than panicking the server.
	closed bool
	// broken is true after a failed write: the client is gone and its context will say so.
	broken bool
}

func newProgress(w http.ResponseWriter) *progress {
	return &progress{w: w, rc: http.NewResponseController(w)}
}

// event is the switcher.SwitchOptions.Progress callback.
func (p *progress) event(ev switcher.Event) { p.line(StreamLine{Event: &ev}) }

// result ends the stream with the switch's report. A switch that produced no event (a no-op)
// still answers with a one-line stream, so a client reads every success the same way.
func (p *progress) result(rep switcher.Report) { p.line(StreamLine{Result: &rep}) }

// fail ends the answer with e: as the last line of a started stream, else as a plain error
// answer with e's status.
func (p *progress) fail(e *Error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if !p.started {
		p.started = true
		writeError(p.w, e)
		return
	}
	p.writeLocked(StreamLine{Error: e})
}

func (p *progress) line(l StreamLine) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/x-ndjson")
		p.w.Header().Set("X-Content-Type-Options", "nosniff")
		p.w.WriteHeader(http.StatusOK)
	}
	p.writeLocked(l)
}

func (p *progress) writeLocked(l StreamLine) {
	if p.broken {
		return
	}
	// Encode ends each value with a newline: one JSON object per line.
	if err := json.NewEncoder(p.w).Encode(l); err != nil {
		p.broken = true
		return
	}
	if err := p.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		p.broken = true
	}
}

// close marks the answer finished; call it before the handler returns.
func (p *progress) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}
