package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the outcome of a run, printed as text or, with -json, as this JSON object.
type report struct {
	URL         string  `json:"url"`
	Connections int     `json:"connections"`
	Opened      int64   `json:"connections_opened"` // more than connections: the server closed some
	Seconds     float64 `json:"seconds"`
	Interrupted bool    `json:"interrupted"` // stopped early by SIGINT or SIGTERM
	Requests    int64   `json:"requests"`
	Failed      int64   `json:"failed"` // transport errors
	Non2xx      int64   `json:"non_2xx"`
	PerSecond   float64 `json:"requests_per_second"`
	Latency     struct {
		P50  float64 `json:"p50"`
		P90  float64 `json:"p90"`
		P99  float64 `json:"p99"`
		Max  float64 `json:"max"`
		Mean float64 `json:"mean"`
	} `json:"latency_ms"`
	Status   map[string]int64 `json:"status"`              // status code -> responses
	ByHeader string           `json:"by_header,omitempty"` // the -by-header name
	Counts   map[string]int64 `json:"counts,omitempty"`    // its value -> responses
	Errors   map[string]int64 `json:"errors,omitempty"`    // failure -> requests
	OK       bool             `json:"ok"`                  // requests > 0, failed == 0, non_2xx == 0
}

func newReport(cfg config, s *stats, elapsed time.Duration, opened int64, interrupted bool) *report {
	r := &report{
		URL:         cfg.url,
		Connections: cfg.conns,
		Opened:      opened,
		Seconds:     elapsed.Seconds(),
		Interrupted: interrupted,
		Requests:    s.requests,
		Failed:      s.failed,
		Non2xx:      s.non2xx,
		Status:      map[string]int64{},
		ByHeader:    cfg.byHeader,
		Errors:      s.errors,
		OK:          s.requests > 0 && s.failed == 0 && s.non2xx == 0,
	}
	if elapsed > 0 {
		r.PerSecond = float64(s.requests) / elapsed.Seconds()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.Latency.P50 = ms(s.latency.quantile(0.50))
	r.Latency.P90 = ms(s.latency.quantile(0.90))
	r.Latency.P99 = ms(s.latency.quantile(0.99))
	r.Latency.Max = ms(s.latency.max)
	r.Latency.Mean = ms(s.latency.mean())
	for code, n := range s.status {
		r.Status[strconv.Itoa(code)] = n
	}
	if cfg.byHeader != "" {
		r.Counts = s.values
	}
	return r
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints one "key: value" line per fact. demo/demo.sh reads the failed: and
// non-2xx: lines, so keep those keys and their first field stable.
func (r *report) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("url:\t%s", r.URL)
	if r.Interrupted {
		p("duration:\t%.1fs\t(interrupted)", r.Seconds)
	} else {
		p("duration:\t%.1fs", r.Seconds)
	}
	p("requests:\t%d", r.Requests)
	p("failed:\t%d\t(transport errors)", r.Failed)
	for _, k := range sortedKeys(r.Errors) {
		p("\t%d\t%s", r.Errors[k], k)
	}
	p("non-2xx:\t%d\t(by status: %s)", r.Non2xx, countList(r.Status, " "))
	p("req/s:\t%.1f", r.PerSecond)
	p("latency:\tp50 %s  p90 %s  p99 %s  max %s", msString(r.Latency.P50), msString(r.Latency.P90),
		msString(r.Latency.P99), msString(r.Latency.Max))
	p("connections:\t%d\t(%d opened)", r.Connections, r.Opened)
	if r.ByHeader != "" {
		p("by %s:\t%s", r.ByHeader, countList(r.Counts, " "))
	}
	if r.Status["301"]+r.Status["302"]+r.Status["307"]+r.Status["308"] > 0 {
		p("hint:\tthe server redirects (to https?); demo-load does not follow redirects, so target the https URL with -insecure")
	}
	if r.OK {
		p("result:\tok, every request answered 2xx")
	} else {
		p("result:\tFAILED: %d failed, %d non-2xx of %d requests", r.Failed, r.Non2xx, r.Requests)
	}
	return tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// countList formats m as "k=v k=v" in key order, or "none".
func countList(m map[string]int64, sep string) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, sep)
}

// msString prints milliseconds with about three significant digits.
func msString(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.0fµs", ms*1000)
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.1fms", ms)
	default:
		return fmt.Sprintf("%.2fs", ms/1000)
	}
}
