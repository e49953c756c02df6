package proxy_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/routie/routie/proxy"
)

// BenchmarkProxyKeepAlive measures the proxy's own cost per request: keep-alive clients
// through the proxy to a trivial upstream, all on 127.0.0.1. Compare runs with benchstat;
// the allocations per request are the steadiest figure on a shared machine.
func BenchmarkProxyKeepAlive(b *testing.B) {
	body := []byte("hello from blue (8080)\n")
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "blue")
		w.Write(body)
	}))
	defer upstream.Close()
	p := proxy.New(slog.New(slog.DiscardHandler))
	p.SetAccessLog(false)
	target, err := p.NewTarget(upstream.Listener.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	p.SetActive(target)
	front := httptest.NewServer(p)
	defer front.Close()

	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		for pb.Next() {
			resp, err := c.Get(front.URL + "/")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
