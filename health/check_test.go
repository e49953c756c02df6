package health_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/routie/routie/health"
)

func probe(t *testing.T, h http.HandlerFunc, p health.Probe) health.Result {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	if p.Path == "" {
		p.Path = "/actuator/health"
	}
	if p.Timeout == 0 {
		p.Timeout = time.Second
	}
	return health.NewChecker().Check(context.Background(), srv.Listener.Addr().String(), p)
}

func TestProbeVerdicts(t *testing.T) {
	up := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":"UP"}`) }
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		probe   health.Probe
		passed  bool
		detail  string
	}{
		{"2xx passes", up, health.Probe{}, true, "HTTP 200"},
		{"5xx fails with its status", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, health.Probe{}, false, "HTTP 503"},
		{"expected body present", up, health.Probe{ExpectBody: `"status":"UP"`}, true, "HTTP 200"},
		{"Actuator saying DOWN with a 200", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":"DOWN"}`) },
			health.Probe{ExpectBody: `"status":"UP"`}, false, `does not contain "\"status\":\"UP\"": {"status":"DOWN"}`},
		{"a redirect is an answer, not followed", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/login", http.StatusFound) },
			health.Probe{}, false, "HTTP 302"},
		{"too slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(300 * time.Millisecond) },
			health.Probe{Timeout: 50 * time.Millisecond}, false, "no answer within 50ms (health.timeout)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := probe(t, tc.handler, tc.probe)
			if r.Passed != tc.passed || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("probe = passed %v, %q; want passed %v and %q", r.Passed, r.Detail, tc.passed, tc.detail)
			}
		})
	}
}

func TestProbeOfAClosedPortSaysNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := health.NewChecker().Check(context.Background(), addr, health.Probe{Path: "/", Timeout: time.Second})
	if r.Passed || r.Detail != "connection refused: nothing is listening on "+addr {
		t.Fatalf("probe of a closed port: %+v", r)
	}
}

func TestStateLogsOnlyTransitions(t *testing.T) {
	var s health.State
	steps := []struct {
		passed, changed bool
	}{{true, true}, {true, false}, {false, true}, {false, false}, {true, true}}
	for i, st := range steps {
		if changed := s.Record(health.Result{Passed: st.passed}); changed != st.changed {
			t.Fatalf("step %d: Record(passed=%v) changed=%v, want %v", i, st.passed, changed, st.changed)
		}
	}
}
