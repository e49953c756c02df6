package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestHSTSIsAddedUnlessTheAppSetsItsOwn(t *testing.T) {
	var maxAge atomic.Int64
	maxAge.Store(31536000)
	tests := []struct {
		name string
		app  http.HandlerFunc
		want string
	}{
		{"app sets none", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }, "max-age=31536000"},
		{"app sets its own", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload")
			w.WriteHeader(http.StatusNoContent)
		}, "max-age=63072000; includeSubDomains; preload"},
		{"early hints first", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Strict-Transport-Security", "max-age=60")
			w.WriteHeader(http.StatusOK)
		}, "max-age=60"},
		{"streamed, flushed through the wrapper", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush through the HSTS writer: %v", err)
			}
		}, "max-age=31536000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(withHSTS(tt.app, &maxAge))
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Values("Strict-Transport-Security"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("Strict-Transport-Security = %q, want exactly %q", got, tt.want)
			}
		})
	}
}

func TestHSTSZeroAddsNothing(t *testing.T) {
	var maxAge atomic.Int64 // tls.hsts = "0s", the default
	srv := httptest.NewTLSServer(withHSTS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), &maxAge))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("Strict-Transport-Security = %q with tls.hsts 0", got)
	}
}
