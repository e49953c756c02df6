package metrics_test

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/internal/testrig"
	"github.com/routie/routie/metrics"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
	routietls "github.com/routie/routie/tls"
)

func TestRoutiedLinksNoPrometheusLibrary(t *testing.T) {
	// go test puts its own go command first in PATH.
	out, err := exec.Command("go", "list", "-deps", "github.com/routie/routie/cmd/routied").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/routied: %v\n%s", err, out)
	}
	for pkg := range strings.FieldsSeq(string(out)) {
		if strings.Contains(pkg, "prometheus") {
			t.Errorf("routied links %s; the Prometheus libraries are for tests only (they cost routied megabytes of resident memory)", pkg)
		}
	}
}

func TestLatencyHistogramExportsOneExactBucketPerDoubling(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	r := newRig(t, blue.Addr(), time.Second, metrics.Sources{})
	const n = 3
	r.get(t, "/", n)

	h := metricOf(t, r.families(t), "routie_request_duration_seconds", "target", blue.Addr()).GetHistogram()
	if h.GetSampleCount() != n {
		t.Errorf("count %d, want %d", h.GetSampleCount(), n)
	}
	if len(h.Bucket) != 16 {
		var les []string
		for _, b := range h.Bucket {
			les = append(les, fmt.Sprint(b.GetUpperBound()))
		}
		t.Fatalf("%d buckets (le %s), want 16: one per doubling from 250µs, and +Inf", len(h.Bucket), strings.Join(les, " "))
	}
	var prev uint64
	for i, b := range h.Bucket {
		if b.GetCumulativeCount() < prev {
			t.Errorf("bucket le=%v counts %d, fewer than the one before: not cumulative", b.GetUpperBound(), b.GetCumulativeCount())
		}
		prev = b.GetCumulativeCount()
		if i == len(h.Bucket)-1 {
			if !math.IsInf(b.GetUpperBound(), +1) || b.GetCumulativeCount() != n {
				t.Errorf("last bucket le=%v counts %d, want le=+Inf counting all %d", b.GetUpperBound(), b.GetCumulativeCount(), n)
			}
			break
		}
		le := time.Duration(math.Round(b.GetUpperBound() * 1e9))
		if want := 250 * time.Microsecond << i; le != want {
			t.Errorf("bucket %d: le=%v, want %v", i, le, want)
		}
		// The count at le is exact only if le closes one of the proxy's buckets: an answer
		// just faster is counted in a bucket up to le, one that took le in the next.
		below := proxy.LatencyBucket(le - 1)
		if proxy.LatencyBound(below) != le || proxy.LatencyBucket(le) != below+1 {
			t.Errorf("le=%v is not the bound of a proxy bucket: its count would be an estimate", le)
		}
	}
}

func TestLabelValuesAreEscaped(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	notAfter := time.Unix(1_900_000_000, 0)
	certs := func() []routietls.NameStatus {
		return []routietls.NameStatus{
			{Name: "shop.example", Mode: conf.TLSFiles, NotAfter: notAfter},
			{Name: `say "hi"`, Mode: conf.TLSFiles, NotAfter: notAfter},
			{Name: `back\slash`, Mode: conf.TLSACME, NotAfter: notAfter},
			{Name: "line\nfeed", Mode: conf.TLSFiles, NotAfter: notAfter},
			{Name: "shop.example", Mode: conf.TLSFiles, NotAfter: notAfter}, // listed twice
			{Name: "not-yet.example", Mode: conf.TLSACME},                   // no certificate yet
			{Name: "localhost", Mode: conf.TLSSelfSigned, NotAfter: notAfter},
		}
	}
	r := newRig(t, blue.Addr(), time.Second, metrics.Sources{Certificates: certs})

	f := r.families(t)["routie_certificate_expiry_timestamp_seconds"]
	var names []string
	for _, m := range f.GetMetric() {
		names = append(names, m.GetLabel()[0].GetValue())
		if v := m.GetGauge().GetValue(); v != float64(notAfter.Unix()) {
			t.Errorf("%q expires at %v, want %v", names[len(names)-1], v, notAfter.Unix())
		}
	}
	// One series per name, sorted by name, each name read back as it was.
	want := []string{`back\slash`, "line\nfeed", `say "hi"`, "shop.example"}
	if !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
}

// sampleLine is a sample in the text format: the series name and its target label, if any.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?:.*,)?target="([^"]*)")?`)

func TestScrapeWritesEachFamilyOnceWithTargetsSorted(t *testing.T) {
	blue, green, red := testrig.StartApp(t, "blue"), testrig.StartApp(t, "green"), testrig.StartApp(t, "red")
	r := newRig(t, blue.Addr(), 10*time.Second, metrics.Sources{RefusedConns: func() uint64 { return 0 }})
	r.get(t, "/", 1)
	r.switchTo(t, green.Addr())
	r.get(t, "/", 1)
	// Green is the standby after this; blue is draining or forgotten.
	r.switchTo(t, red.Addr())
	r.get(t, "/", 1)
	text := r.text(t)

	heads := map[string]int{}
	family := "" // the family whose HELP and TYPE came last
	lastTarget := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if name, ok := strings.CutPrefix(line, "# HELP "); ok {
			family, _, _ = strings.Cut(name, " ")
			heads[family]++
			continue
		}
		if strings.HasPrefix(line, "# TYPE ") {
			if name, _, _ := strings.Cut(line[len("# TYPE "):], " "); name != family {
				t.Errorf("line %d: TYPE of %s after the HELP of %s", i+1, name, family)
			}
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d is no sample: %q", i+1, line)
		}
		if name := m[1]; name != family && strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count") != family {
			t.Errorf("line %d: sample of %s under the HELP and TYPE of %s: a family's samples must follow its head", i+1, name, family)
		}
		if target := m[2]; target != "" {
			if target < lastTarget[family] {
				t.Errorf("line %d: %s for target %s after %s: targets are not sorted", i+1, m[1], target, lastTarget[family])
			}
			lastTarget[family] = target
		}
	}
	for name, n := range heads {
		if n != 1 {
			t.Errorf("%s has %d HELP lines, want 1", name, n)
		}
	}
	if len(lastTarget) != 8 {
		t.Errorf("%d families have target labels, want 8 (requests, failures, duration, in flight, streams, connections, role, health)", len(lastTarget))
	}
}

func TestOnlyTheWatchedRuntimeAndProcessSeriesAreServed(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	r := newRig(t, blue.Addr(), time.Second, metrics.Sources{})
	before := time.Now()
	got := r.families(t)

	want := map[string]dto.MetricType{
		"go_goroutines":                 dto.MetricType_GAUGE,
		"go_memstats_heap_alloc_bytes":  dto.MetricType_GAUGE,
		"process_cpu_seconds_total":     dto.MetricType_COUNTER,
		"process_open_fds":              dto.MetricType_GAUGE,
		"process_resident_memory_bytes": dto.MetricType_GAUGE,
		"process_start_time_seconds":    dto.MetricType_GAUGE,
	}
	value := map[string]float64{}
	for name, f := range got {
		if !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			continue
		}
		typ, ok := want[name]
		switch {
		case !ok:
			t.Errorf("%s is served; routied serves only %d go_ and process_ families", name, len(want))
			continue
		case f.GetType() != typ:
			t.Errorf("%s is a %s, want a %s", name, f.GetType(), typ)
		}
		if m := f.GetMetric(); len(m) == 1 {
			value[name] = m[0].GetGauge().GetValue() + m[0].GetCounter().GetValue()
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("no %s", name)
		}
	}

	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		min, max float64
	}{
		{"go_goroutines", 2, 10_000},
		{"go_memstats_heap_alloc_bytes", 1 << 10, 1 << 30},
		{"process_cpu_seconds_total", 0, 3600},
		// The test's own listing of /proc/self/fd holds one descriptor more; servers may
		// have opened or closed a connection meanwhile.
		{"process_open_fds", 3, float64(len(fds)) + 10},
		{"process_resident_memory_bytes", 1 << 20, 1 << 32},
		{"process_start_time_seconds", float64(before.Add(-time.Hour).Unix()), float64(before.Unix()) + 1},
	} {
		if v := value[c.name]; v < c.min || v > c.max {
			t.Errorf("%s = %v, want between %v and %v", c.name, v, c.min, c.max)
		}
	}
}

// blockingSwitcher holds each scrape in Known until release is closed.
type blockingSwitcher struct {
	entered chan struct{}
	release chan struct{}
}

func (s *blockingSwitcher) Known() []switcher.KnownTarget {
	s.entered <- struct{}{}
	<-s.release
	return nil
}

func (s *blockingSwitcher) Counters() switcher.Counters { return switcher.Counters{} }

func TestScrapesBeyondFourAtOnceAreRefused(t *testing.T) {
	sw := &blockingSwitcher{entered: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(metrics.Handler(metrics.Sources{Switcher: sw}, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)

	scrape := func(statuses chan<- int) {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			statuses <- 0
			return
		}
		resp.Body.Close()
		statuses <- resp.StatusCode
	}
	held := make(chan int, 4)
	for range 4 {
		go scrape(held)
		<-sw.entered
	}
	fifth := make(chan int, 1)
	go scrape(fifth)
	select {
	case code := <-fifth:
		if code != http.StatusServiceUnavailable {
			t.Errorf("fifth scrape at once: %d, want 503", code)
		}
	case <-sw.entered:
		t.Error("a fifth scrape ran while four were in progress")
		defer func() { <-fifth }()
	}
	close(sw.release)
	for range 4 {
		if code := <-held; code != http.StatusOK {
			t.Errorf("scrape held in progress: %d, want 200", code)
		}
	}
	go func() { <-sw.entered }()
	if resp, _ := fetch(t, srv.URL); resp.StatusCode != http.StatusOK {
		t.Errorf("scrape after the others ended: %s, want 200", resp.Status)
	}
}

func TestScrapeIsPlainTextFormatNeverCompressed(t *testing.T) {
	blue := testrig.StartApp(t, "blue")
	r := newRig(t, blue.Addr(), time.Second, metrics.Sources{})
	req, _ := http.NewRequest("GET", r.metrics.URL+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding %q, want none", ce)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the text format 0.0.4", ct)
	}
}

// metricOf returns the metric of family name whose label has value, failing the test when
// there is none.
func metricOf(t *testing.T, families map[string]*dto.MetricFamily, name, label, value string) *dto.Metric {
	t.Helper()
	for _, m := range families[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return nil
}
