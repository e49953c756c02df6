package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
)

// The short path serves bodiless GET and HEAD requests without httputil.ReverseProxy: the
// request line and headers are written straight onto a pooled upstream connection, and the
// answer's headers are handed to the client's ResponseWriter without copying. It does what
// ReverseProxy with SetURL and SetXForwarded does for such requests (hop-by-hop headers
// dropped, X-Forwarded-* set by routie alone, the client's Host kept) at a fraction of the
// allocations; everything else, bodies and protocol upgrades included, goes through
// ReverseProxy.

// isHopHeader reports whether key (canonical) is meaningful only for one connection
// (RFC 9110 7.6.1). A switch, not a map: this runs for every header of every request.
func isHopHeader(key string) bool {
	switch key {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// isForwardingHeader reports whether key is a forwarding header, which routie writes itself
// rather than trust from the client.
func isForwardingHeader(key string) bool {
	switch key {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// shortPath reports whether in can take the short path: an idempotent request without a
// body that asks for nothing but a plain exchange.
func shortPath(in *http.Request) bool {
	if in.Method != http.MethodGet && in.Method != http.MethodHead {
		return false
	}
	if in.Body != http.NoBody || in.ContentLength > 0 || len(in.TransferEncoding) > 0 || len(in.Trailer) > 0 {
		return false
	}
	h := in.Header
	return len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0
}

// serveShort forwards in over one of the target's pooled connections.
func (p *Proxy) serveShort(w *flight, in *http.Request, ctx context.Context) {
	t := w.target
	for attempt := 0; ; attempt++ {
		pc, reused, err := t.pool.get(ctx)
		if err != nil {
			p.serveError(w, in.WithContext(ctx), err)
			return
		}
		stop := context.AfterFunc(ctx, func() { pc.conn.SetDeadline(aLongTimeAgo) })
		resp, err := exchange(pc, in)
		if err != nil {
			stop()
			pc.conn.Close()
			// A pooled connection the upstream closed while idle fails on first use; GET and
			// HEAD are safe to send again, once, on a new connection.
			if reused && attempt == 0 && ctx.Err() == nil {
				continue
			}
			p.serveError(w, in.WithContext(ctx), err)
			return
		}
		clean := p.relay(w, resp, ctx)
		if stop() && clean && !resp.Close {
			t.pool.put(pc)
		} else {
			pc.conn.Close()
		}
		if !clean && ctx.Err() != nil && context.Cause(ctx) != context.Canceled {
			// Cut by a drain deadline after the answer began: end the client's connection so
			// it sees a truncated response, not a complete-looking one.
			panic(http.ErrAbortHandler)
		}
		return
	}
}

// exchange writes the request head for in on pc and reads the response head.
func exchange(pc *pconn, in *http.Request) (*http.Response, error) {
	if err := writeRequestHead(pc.bw, in); err != nil {
		return nil, err
	}
	if err := pc.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(pc.br, in)
		if err != nil {
			return nil, err
		}
		// Skip informational answers (103 Early Hints); the final one follows.
		if resp.StatusCode < 200 {
			continue
		}
		return resp, nil
	}
}

func writeRequestHead(bw *bufio.Writer, in *http.Request) error {
	// The request target as the client sent it, as nginx forwards it when proxy_pass has no
	// path; anything but origin form ("/path?query") is rebuilt from the parsed URL.
	uri := in.RequestURI
	if !strings.HasPrefix(uri, "/") {
		uri = in.URL.RequestURI()
	}
	bw.WriteString(in.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(in.Host)
	bw.WriteString("\r\n")
	dropped := connectionTokens(in.Header)
	for key, values := range in.Header {
		if isHopHeader(key) || isForwardingHeader(key) || dropped[key] {
			continue
		}
		for _, v := range values {
			bw.WriteString(key)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if te := in.Header["Te"]; len(te) > 0 && strings.Contains(strings.ToLower(strings.Join(te, ",")), "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	client, _, err := net.SplitHostPort(in.RemoteAddr)
	if err == nil {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(client)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.WriteString(in.Host)
	if in.TLS != nil {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n\r\n")
	} else {
		_, err = bw.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
	}
	return err
}

// connectionTokens returns the headers a Connection header names as hop-by-hop, or nil.
func connectionTokens(h http.Header) map[string]bool {
	values := h["Connection"]
	if len(values) == 0 {
		return nil
	}
	named := map[string]bool{}
	for _, v := range values {
		for token := range strings.SplitSeq(v, ",") {
			if token = textproto.TrimString(token); token != "" {
				named[textproto.CanonicalMIMEHeaderKey(token)] = true
			}
		}
	}
	return named
}

// relay sends resp to the client and reports whether its body was read to the end, so the
// upstream connection can carry another request.
func (p *Proxy) relay(w *flight, resp *http.Response, ctx context.Context) (clean bool) {
	defer resp.Body.Close()
	dst := w.Header()
	dropped := connectionTokens(resp.Header)
	for key, values := range resp.Header {
		if isHopHeader(key) || dropped[key] {
			continue
		}
		dst[key] = values
	}
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	// Streamed answers (event streams, bodies of unknown length) reach the client as the app
	// writes them; others are buffered by net/http as usual.
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if stream {
		w.becomeStream()
	}
	flush := stream || resp.ContentLength == -1
	w.WriteHeader(resp.StatusCode)
	if resp.Body == http.NoBody {
		return true
	}
	if flush {
		_ = w.FlushError()
	}
	buf := p.buffers.Get()
	defer p.buffers.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false // the client went away
			}
			if flush {
				if err := w.FlushError(); err != nil {
					return false
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if ctx.Err() == nil {
				p.log.Warn("upstream broke off a response", "target", w.target.addr, "path", resp.Request.URL.Path, "err", describe(rerr))
			}
			return false
		}
	}
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
	return true
}
