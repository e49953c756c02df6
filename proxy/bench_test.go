package proxy_test

import (
	"bytes"
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

// BenchmarkProxyPostKeepAlive is BenchmarkProxyKeepAlive for requests with a 1 KiB body,
// which take ReverseProxy's path, with limits.max_body at its default as routied runs it: a
// body of declared length is checked against the limit without a wrapper or an allocation.
func BenchmarkProxyPostKeepAlive(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("created\n"))
	}))
	defer upstream.Close()
	p := proxy.New(slog.New(slog.DiscardHandler))
	p.SetAccessLog(false)
	p.SetMaxBody(10 << 20)
	target, err := p.NewTarget(upstream.Listener.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	p.SetActive(target)
	front := httptest.NewServer(p)
	defer front.Close()
	body := bytes.Repeat([]byte("x"), 1<<10)

	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		for pb.Next() {
			resp, err := c.Post(front.URL+"/orders", "text/plain", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkProxyKeepAliveCanary is BenchmarkProxyKeepAlive with and without a canary taking
// 10% of the clients, for the same requests: "pinned" clients send their ticket, as browsers
// do after their first answer; "cookieless" ones never keep it, so with a canary each of
// their answers carries a new Set-Cookie. Compare each "canary" case with its "none" twin.
func BenchmarkProxyKeepAliveCanary(b *testing.B) {
	body := []byte("hello from blue (8080)\n")
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "blue")
		w.Write(body)
	})
	stable, canary := httptest.NewServer(hello), httptest.NewServer(hello)
	defer stable.Close()
	defer canary.Close()
	p := proxy.New(slog.New(slog.DiscardHandler))
	p.SetAccessLog(false)
	st, _ := p.NewTarget(stable.Listener.Addr().String())
	ct, _ := p.NewTarget(canary.Listener.Addr().String())
	p.SetActive(st)
	front := httptest.NewServer(p)
	defer front.Close()

	for _, tc := range []struct {
		name   string
		canary bool
		cookie string
	}{
		{"none/cookieless", false, ""},
		{"canary/cookieless", true, ""},
		{"none/pinned", false, proxy.CanaryCookie + "=4321"},
		{"canary/pinned", true, proxy.CanaryCookie + "=4321"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.canary {
				p.SetCanary(ct, proxy.Split{Share: 1000, Salt: 1234})
				defer p.EndCanary()
			}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
					if tc.cookie != "" {
						req.Header.Set("Cookie", tc.cookie)
					}
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
