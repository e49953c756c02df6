package proxy

import (
	"errors"
	"net"
	"net/http"
	"strconv"
)

// SetMaxBody sets the largest request body routie forwards, in bytes; 0 forwards any size.
// A larger body is answered with 413 and the target never receives the request complete.
// It applies to requests that arrive from now on. Default 0.
func (p *Proxy) SetMaxBody(n int64) { p.maxBody.Store(max(n, 0)) }

// limitBody applies limits.max_body to a request that has, or may have, a body. A declared
// Content-Length over the limit is refused before anything goes upstream. A body of unknown
// length (chunked, or HTTP/2 without content-length) is read through http.MaxBytesReader:
// its error fails the upstream request mid-body, so the target sees a chunked body without
// its last chunk (an aborted request, never a complete one), and serveError answers 413. A
// body within its declared length needs no wrapper: net/http already stops at that length.
func (p *Proxy) limitBody(f *flight, w http.ResponseWriter, r *http.Request) bool {
	limit := p.maxBody.Load()
	switch {
	case limit == 0 || r.ContentLength == 0:
		return true
	case r.ContentLength > limit:
		p.refuseBody(f, r, f.target.addr, limit)
		return false
	case r.ContentLength < 0:
		// w, not the flight: when it is net/http's own writer, MaxBytesReader also tells
		// the server to close the connection after the 413 rather than read on.
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return true
}

// refuseBody answers 413 for a body over limit bytes.
func (p *Proxy) refuseBody(w http.ResponseWriter, r *http.Request, target string, limit int64) {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	// content_length is -1 for a chunked body, refused once it passed the limit.
	p.log.Warn("request body over limits.max_body refused with 413", "target", target, "method", r.Method,
		"path", r.URL.Path, "client", client, "content_length", r.ContentLength, "max_body", limit)
	body := "413 Content Too Large\n\nThe request body is larger than the " + formatSize(limit) + " this server accepts.\n"
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.ProtoMajor == 1 {
		// The client may still be sending, and the rest of its body is not read: end the
		// connection after the answer. (HTTP/2 ends only the stream; a Connection header
		// there would close every other stream on the connection too.)
		h.Set("Connection", "close")
	}
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = w.Write([]byte(body))
}

// bodyTooLarge reports whether err is limitBody's MaxBytesReader stopping a body, and the
// limit it applied.
func bodyTooLarge(err error) (limit int64, ok bool) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return tooLarge.Limit, true
	}
	return 0, false
}

// formatSize writes n bytes in the largest binary unit that divides it: "10 MiB", "1500 bytes".
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
