package metrics_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/metrics"
	"github.com/routie/routie/switcher"
	routietls "github.com/routie/routie/tls"
)

// The tests of this package run routied's core on real sockets (testrig): the proxy in front
// of apps on 127.0.0.1 and its switcher, and the metrics endpoint reading them.

// rig is routied's core and the metrics endpoint reading it.
type rig struct {
	*testrig.Rig
	metrics *httptest.Server
}

func newRig(t *testing.T, initial string, drainTimeout time.Duration, src metrics.Sources) *rig {
	t.Helper()
	st := testrig.FastSettings()
	st.Passes = 1
	st.Wait = time.Second
	st.DrainTimeout = drainTimeout
	st.StreamGrace = 0
	core := testrig.NewRig(t, initial, testrig.Options{Settings: st, LogLevel: slog.LevelError})
	src.Switcher = core.Switcher
	r := &rig{Rig: core, metrics: httptest.NewServer(metrics.Handler(src, core.Log))}
	t.Cleanup(r.metrics.Close)
	return r
}

func (r *rig) get(t *testing.T, path string, n int) {
	t.Helper()
	for range n {
		resp, err := r.Front.Client().Get(r.Front.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func (r *rig) switchTo(t *testing.T, target string) {
	t.Helper()
	if _, err := r.Switcher.Switch(context.Background(), target, switcher.SwitchOptions{}); err != nil {
		t.Fatalf("switch to %s: %v", target, err)
	}
}

// fetch GETs /metrics from url and returns the answer with its body read.
func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// text fetches /metrics and returns the exposition text.
func (r *rig) text(t *testing.T) string {
	t.Helper()
	resp, body := fetch(t, r.metrics.URL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	return body
}

// families fetches /metrics and parses it, failing the test when it is not valid exposition
// text.
func (r *rig) families(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(r.text(t)))
	if err != nil {
		t.Fatalf("/metrics is not valid exposition text: %v", err)
	}
	return families
}

// scrape fetches /metrics and returns every sample by its series, written as in the
// exposition format with labels sorted: `routie_requests_total{class="2xx",target="..."}`.
// Histograms and summaries give name_count, name_sum and name_bucket{le=...}.
func (r *rig) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for name, f := range r.families(t) {
		for _, m := range f.Metric {
			labels := labelsOf(m)
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[name+labels("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name+labels("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out[name+"_count"+labels("")] = float64(h.GetSampleCount())
				out[name+"_sum"+labels("")] = h.GetSampleSum()
				for _, b := range h.Bucket {
					out[name+"_bucket"+labels(fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
			case dto.MetricType_SUMMARY:
				out[name+"_count"+labels("")] = float64(m.GetSummary().GetSampleCount())
				out[name+"_sum"+labels("")] = m.GetSummary().GetSampleSum()
			default:
				out[name+labels("")] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// labelsOf returns a function writing m's labels, plus extra, sorted, in braces.
func labelsOf(m *dto.Metric) func(extra string) string {
	return func(extra string) string {
		var pairs []string
		for _, l := range m.Label {
			pairs = append(pairs, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		if extra != "" {
			pairs = append(pairs, extra)
		}
		if len(pairs) == 0 {
			return ""
		}
		sort.Strings(pairs)
		return "{" + strings.Join(pairs, ",") + "}"
	}
}

func expect(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for _, series := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		v, ok := got[series]
		switch {
		case !ok:
			t.Errorf("no series %s", series)
		case v != want[series]:
			t.Errorf("%s = %v, want %v", series, v, want[series])
		}
	}
}

func TestMetricsCountEachTargetsRequestsAcrossASwitch(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	r := newRig(t, blue.Addr(), 10*time.Second, metrics.Sources{})
	const n, m = 7, 5
	r.get(t, "/", n)
	r.get(t, "/missing", 2)
	r.switchTo(t, green.Addr())
	r.get(t, "/", m)

	b, g := blue.Addr(), green.Addr()
	got := r.scrape(t)
	expect(t, got, map[string]float64{
		`routie_requests_total{class="2xx",target="` + b + `"}`: n,
		`routie_requests_total{class="4xx",target="` + b + `"}`: 2,
		`routie_requests_total{class="5xx",target="` + b + `"}`: 0,
		`routie_requests_total{class="2xx",target="` + g + `"}`: m,
		`routie_requests_total{class="4xx",target="` + g + `"}`: 0,
		`routie_target_failures_total{target="` + b + `"}`:      0,

		`routie_request_duration_seconds_count{target="` + b + `"}`:            n + 2,
		`routie_request_duration_seconds_count{target="` + g + `"}`:            m,
		`routie_request_duration_seconds_bucket{le="+Inf",target="` + g + `"}`: m,

		`routie_in_flight_requests{target="` + b + `"}`: 0,
		`routie_in_flight_requests{target="` + g + `"}`: 0,
		`routie_open_streams{target="` + g + `"}`:       0,

		`routie_target_role{role="active",target="` + g + `"}`:  1,
		`routie_target_role{role="standby",target="` + b + `"}`: 1,
		// The switch's health gate probed green; blue was never probed (Run is not running).
		`routie_target_health{state="up",target="` + g + `"}`:      1,
		`routie_target_health{state="down",target="` + g + `"}`:    0,
		`routie_target_health{state="unknown",target="` + b + `"}`: 1,

		`routie_switches_total{result="ok"}`:      1,
		`routie_switches_total{result="refused"}`: 0,
		`routie_switches_total{result="noop"}`:    0,
		`routie_rollbacks_total{result="ok"}`:     0,
		// Switch returns once the old target's requests are done: its drain is counted.
		`routie_drain_duration_seconds_count`:   1,
		`routie_drain_cancelled_requests_total`: 0,
	})
	if got[`routie_request_duration_seconds_sum{target="`+g+`"}`] <= 0 {
		t.Errorf("routie_request_duration_seconds_sum for %s is not positive", g)
	}
	// The Go runtime's and the process's own metrics come along.
	for _, series := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[series]; !ok {
			t.Errorf("no series %s", series)
		}
	}
}

func TestMetricsCountSwitchAndRollbackResults(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	r := newRig(t, blue.Addr(), 10*time.Second, metrics.Sources{})
	ctx := context.Background()

	r.switchTo(t, green.Addr())
	r.switchTo(t, green.Addr()) // already active
	if _, err := r.Switcher.Switch(ctx, testrig.DeadPort(t), switcher.SwitchOptions{Wait: 50 * time.Millisecond}); err == nil {
		t.Fatal("switch to a dead port was not refused")
	}
	if _, err := r.Switcher.Switch(ctx, "not a port", switcher.SwitchOptions{}); err == nil {
		t.Fatal("switch to an unparsable target succeeded")
	}
	if _, err := r.Switcher.Rollback(ctx, switcher.SwitchOptions{}); err != nil {
		t.Fatalf("rollback: %v", err)
	}

	expect(t, r.scrape(t), map[string]float64{
		`routie_switches_total{result="ok"}`:                               1,
		`routie_switches_total{result="noop"}`:                             1,
		`routie_switches_total{result="refused"}`:                          1,
		`routie_switches_total{result="failed"}`:                           1,
		`routie_rollbacks_total{result="ok"}`:                              1,
		`routie_rollbacks_total{result="refused"}`:                         0,
		`routie_drain_duration_seconds_count`:                              2,
		`routie_target_role{role="active",target="` + blue.Addr() + `"}`:   1,
		`routie_target_role{role="standby",target="` + green.Addr() + `"}`: 1,
	})
}

func TestForgottenTargetLeavesNoSeries(t *testing.T) {
	blue, green, red := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green"), testrig.StartApp(t, "red")
	r := newRig(t, blue.Addr(), 10*time.Second, metrics.Sources{})
	r.get(t, "/", 3)
	r.switchTo(t, green.Addr())
	r.get(t, "/", 3)
	// Blue is the standby now, and still draining its (zero) streams for a moment.
	testrig.WaitFor(t, "blue's drain to end", func() bool { return len(r.Switcher.Status().Draining) == 0 && r.Switcher.Status().Standby != nil })
	r.switchTo(t, red.Addr()) // green becomes the standby; blue is forgotten
	testrig.WaitFor(t, "blue to be forgotten", func() bool {
		for _, k := range r.Switcher.Known() {
			if k.Target.Addr() == blue.Addr() {
				return false
			}
		}
		return true
	})

	got := r.scrape(t)
	for series := range got {
		if strings.Contains(series, blue.Addr()) {
			t.Errorf("series %s remains for a target routied no longer knows", series)
		}
	}
	expect(t, got, map[string]float64{
		`routie_requests_total{class="2xx",target="` + green.Addr() + `"}`: 3,
		`routie_target_role{role="standby",target="` + green.Addr() + `"}`: 1,
		`routie_target_role{role="active",target="` + red.Addr() + `"}`:    1,
	})
}

func TestDrainDeadlineCancellationsAreCounted(t *testing.T) {
	blue, green := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green")
	r := newRig(t, blue.Addr(), 100*time.Millisecond, metrics.Sources{})
	answered := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := r.Front.Client().Get(r.Front.URL + "/hold")
			if err != nil {
				answered <- 0
				return
			}
			resp.Body.Close()
			answered <- resp.StatusCode
		}()
		<-blue.Held()
	}
	expect(t, r.scrape(t), map[string]float64{`routie_in_flight_requests{target="` + blue.Addr() + `"}`: 2})

	r.switchTo(t, green.Addr()) // returns after the drain, which cancels both at 100ms
	for range 2 {
		if code := <-answered; code != http.StatusGatewayTimeout {
			t.Errorf("held request answered %d, want 504", code)
		}
	}
	got := r.scrape(t)
	expect(t, got, map[string]float64{
		`routie_drain_cancelled_requests_total`:                           2,
		`routie_drain_duration_seconds_count`:                             1,
		`routie_target_failures_total{target="` + blue.Addr() + `"}`:      2,
		`routie_requests_total{class="5xx",target="` + blue.Addr() + `"}`: 2,
		`routie_in_flight_requests{target="` + blue.Addr() + `"}`:         0,
	})
	if s := got["routie_drain_duration_seconds_sum"]; s < 0.1 {
		t.Errorf("routie_drain_duration_seconds_sum = %v, want at least the 0.1s drain.timeout", s)
	}
}

func TestCertificateExpiryIsReportedPerNameForFilesMode(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	dir := t.TempDir()
	notAfter := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	cfg := conf.Default()
	cfg.State.Dir = dir
	cfg.TLS.Mode = conf.TLSFiles
	cfg.TLS.CertFile, cfg.TLS.KeyFile = writeCertificate(t, dir, notAfter, "shop.example", "www.shop.example")
	certs, err := routietls.New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(certs.Close)

	r := newRig(t, blue.Addr(), time.Second, metrics.Sources{Certificates: certs.Status, RefusedConns: func() uint64 { return 3 }})
	got := r.scrape(t)
	expect(t, got, map[string]float64{
		`routie_certificate_expiry_timestamp_seconds{name="shop.example"}`:     float64(notAfter.Unix()),
		`routie_certificate_expiry_timestamp_seconds{name="www.shop.example"}`: float64(notAfter.Unix()),
		`routie_refused_connections_total`:                                     3,
	})
}

func TestSelfSignedCertificateHasNoExpirySeries(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	cfg := conf.Default()
	cfg.State.Dir = t.TempDir()
	certs, err := routietls.New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(certs.Close)
	r := newRig(t, blue.Addr(), time.Second, metrics.Sources{Certificates: certs.Status})
	for series := range r.scrape(t) {
		if strings.HasPrefix(series, "routie_certificate_") {
			t.Errorf("self-signed mode reports %s", series)
		}
	}
}

func TestMetricsFollowPrometheusNamingConventions(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	r := newRig(t, blue.Addr(), time.Second, metrics.Sources{RefusedConns: func() uint64 { return 0 }})
	r.get(t, "/", 1)
	problems, err := promlint.New(strings.NewReader(r.text(t))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// writeCertificate writes a self-issued certificate for names, valid until notAfter, and its
// key, as PEM files in dir.
func writeCertificate(t *testing.T, dir string, notAfter time.Time, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}
