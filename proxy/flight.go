package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"time"
)

// flight is one request on its way through the proxy. It wraps the client's ResponseWriter to
// see the status, the byte count and a protocol switch, and it ties the request to the drain
// deadlines of the target it was admitted to.
type flight struct {
	http.ResponseWriter
	target *Target
	gen    *generation
	start  time.Time
	status int
	bytes  int64
	stream bool
	failed bool // routie answered for the target (502, 504)
	// pin makes the answer give the client its canary ticket in a Set-Cookie; secure adds
	// the Secure attribute (the client came over HTTPS).
	pin, secure bool
	ticket      uint32
	cancel      context.CancelCauseFunc
	// stopDeadline unregisters the request from the generation context whose cancellation
	// would end it: the requests' one, or the streams' one once it became a stream.
	stopDeadline func() bool
}

func startFlight(w http.ResponseWriter, t *Target) *flight {
	return &flight{ResponseWriter: w, target: t, gen: t.gen.Load(), start: time.Now()}
}

// watchRequests ends the request when its target's drain passes drain.timeout.
func (f *flight) watchRequests() {
	g, cancel := f.gen, f.cancel
	f.stopDeadline = context.AfterFunc(g.requests, func() { cancel(context.Cause(g.requests)) })
}

// becomeStream moves the request from its target's HTTP requests to its streams. It runs on
// the request's own goroutine (from ModifyResponse or Hijack), so the fields need no lock.
func (f *flight) becomeStream() {
	if f.stream {
		return
	}
	f.stream = true
	g, cancel := f.gen, f.cancel
	if f.stopDeadline() {
		f.stopDeadline = context.AfterFunc(g.streams, func() { cancel(context.Cause(g.streams)) })
	}
	f.target.streams.Add(1)
	f.target.releaseRequest()
}

// finish lets go of the request's place on its target and counts its answer.
func (f *flight) finish() {
	f.stopDeadline()
	f.cancel(nil)
	if f.status == 0 {
		f.status = http.StatusOK
	}
	if f.status != statusClientGone {
		f.target.stats.observe(f.status, time.Since(f.start), f.stream, f.failed)
	}
	if f.stream {
		f.target.releaseStream()
	} else {
		f.target.releaseRequest()
	}
}

func (f *flight) WriteHeader(code int) {
	if f.status == 0 && code >= 200 {
		f.status = code
		f.pinClient()
	}
	f.ResponseWriter.WriteHeader(code)
}

func (f *flight) Write(b []byte) (int, error) {
	if f.status == 0 {
		f.status = http.StatusOK
		f.pinClient()
	}
	n, err := f.ResponseWriter.Write(b)
	f.bytes += int64(n)
	return n, err
}

// FlushError lets ReverseProxy flush streamed responses through the wrapper.
func (f *flight) FlushError() error {
	return http.NewResponseController(f.ResponseWriter).Flush()
}

// Hijack hands the client connection to ReverseProxy for a protocol switch (WebSocket) and
// counts the request as a stream from then on.
func (f *flight) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(f.ResponseWriter).Hijack()
	if err == nil {
		f.status = http.StatusSwitchingProtocols
		f.pinClient() // ReverseProxy writes the 101 with this header map after the hijack
		f.becomeStream()
	}
	return conn, brw, err
}

// pinClient adds the client's canary ticket to the answer's header, once, as the final
// status goes out: after the app's headers were copied (the short path replaces header
// slices wholesale) and before they are sent.
func (f *flight) pinClient() {
	if f.pin {
		f.pin = false
		f.ResponseWriter.Header().Add("Set-Cookie", setCookie(f.ticket, f.secure))
	}
}

// Unwrap gives http.ResponseController the client's writer for everything else.
func (f *flight) Unwrap() http.ResponseWriter { return f.ResponseWriter }
