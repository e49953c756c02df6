// Package metrics turns routied's state into Prometheus metrics. Everything is read at scrape
// time from the switcher (its targets and its totals), the proxy's per-target counters and
// the certificates, so the request path does no work for metrics beyond the atomic adds the
// proxy makes anyway, and a target the switcher has forgotten has no series left.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routie/routie/conf"
	"github.com/routie/routie/health"
	"github.com/routie/routie/proxy"
	"github.com/routie/routie/switcher"
	routietls "github.com/routie/routie/tls"
)

// Switcher is what the metrics read from the switcher; *switcher.Switcher is one.
type Switcher interface {
	// Known lists the targets held now, each with its live counters.
	Known() []switcher.KnownTarget
	// Counters returns the switch, rollback and drain totals.
	Counters() switcher.Counters
}

// Sources are the parts of routied the metrics read at each scrape.
type Sources struct {
	// Switcher gives the targets and the switch, rollback and drain totals. Required.
	Switcher Switcher
	// Certificates returns each name's certificate; nil when routied serves no HTTPS.
	// Expiry is reported for names served in mode "acme" or "files" only: a self-signed
	// certificate is made anew when needed.
	Certificates func() []routietls.NameStatus
	// RefusedConns returns how many connections limits.max_conns_per_client refused; nil
	// when there is no cap.
	RefusedConns func() uint64
}

// Collector is a prometheus.Collector of routied's own metrics, read from its Sources at each
// scrape. It keeps no state, so scrapes may run concurrently.
type Collector struct {
	src Sources
}

// NewCollector returns a Collector reading src.
func NewCollector(src Sources) *Collector { return &Collector{src: src} }

// Metric names and label sets; the help texts say what each counts.
var (
	requestsDesc = prometheus.NewDesc("routie_requests_total",
		"Requests answered, by target and status class (1xx to 5xx). The 502 and 504 routied answers for a failing target are 5xx.",
		[]string{"target", "class"}, nil)
	failuresDesc = prometheus.NewDesc("routie_target_failures_total",
		"Requests routied answered itself with 502 or 504 because the target failed or its drain deadline passed; also counted in routie_requests_total.",
		[]string{"target"}, nil)
	durationDesc = prometheus.NewDesc("routie_request_duration_seconds",
		"Time from a request's arrival to the end of its answer, by target. WebSocket connections and event streams are not timed.",
		[]string{"target"}, nil)
	inFlightDesc = prometheus.NewDesc("routie_in_flight_requests",
		"HTTP requests the target is serving now.",
		[]string{"target"}, nil)
	streamsDesc = prometheus.NewDesc("routie_open_streams",
		"WebSocket connections and event streams open to the target now.",
		[]string{"target"}, nil)
	connsDesc = prometheus.NewDesc("routie_upstream_connections",
		"Connections open from routied to the target now, idle ones included.",
		[]string{"target"}, nil)
	roleDesc = prometheus.NewDesc("routie_target_role",
		"1 for each target routied holds, labelled with its role: active (receives new requests), standby (the rollback target) or draining (retired, finishing its requests).",
		[]string{"target", "role"}, nil)
	healthDesc = prometheus.NewDesc("routie_target_health",
		"The target's health by its probes: 1 for its state (up, down, or unknown before the first probe), 0 for the others.",
		[]string{"target", "state"}, nil)
	switchesDesc = prometheus.NewDesc("routie_switches_total",
		"Switches by result: ok (traffic moved), refused (health gate failed or another switch in progress), failed (bad target or cancelled), noop (already active).",
		[]string{"result"}, nil)
	rollbacksDesc = prometheus.NewDesc("routie_rollbacks_total",
		"Rollbacks by result: ok, refused (standby failed its probe or was stopped by a deploy, no standby, or a switch in progress), failed (cancelled), noop.",
		[]string{"result"}, nil)
	drainDesc = prometheus.NewDesc("routie_drain_duration_seconds",
		"Time the drains of retired targets waited for their in-flight requests; the count is the drains that ran to their end.",
		nil, nil)
	drainCancelledDesc = prometheus.NewDesc("routie_drain_cancelled_requests_total",
		"Requests cancelled with a 504 because drain.timeout passed while their target was retired.",
		nil, nil)
	streamsClosedDesc = prometheus.NewDesc("routie_drain_closed_streams_total",
		"WebSocket connections and event streams closed because drain.streams passed while their target was retired.",
		nil, nil)
	certExpiryDesc = prometheus.NewDesc("routie_certificate_expiry_timestamp_seconds",
		"When the certificate served for the name expires, in seconds since the Unix epoch (tls.mode acme or files). A name without a certificate yet has no series.",
		[]string{"name"}, nil)
	refusedConnsDesc = prometheus.NewDesc("routie_refused_connections_total",
		"Client connections closed on arrival because their IP address held limits.max_conns_per_client connections already.",
		nil, nil)
)

// statusClasses label routie_requests_total; index i is class i (1xx at 1).
var statusClasses = [...]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

var healthStates = [...]health.Health{health.Up, health.Down, health.Unknown}

// Describe sends the descriptions of every metric Collect may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		requestsDesc, failuresDesc, durationDesc, inFlightDesc, streamsDesc, connsDesc, roleDesc,
		healthDesc, switchesDesc, rollbacksDesc, drainDesc, drainCancelledDesc, streamsClosedDesc,
		certExpiryDesc, refusedConnsDesc,
	} {
		ch <- d
	}
}

// Collect reads the sources and sends their metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range c.src.Switcher.Known() {
		c.collectTarget(ch, k)
	}

	n := c.src.Switcher.Counters()
	outcomes(ch, switchesDesc, n.Switches)
	outcomes(ch, rollbacksDesc, n.Rollbacks)
	ch <- prometheus.MustNewConstSummary(drainDesc, n.Drains, n.DrainTime.Seconds(), nil)
	ch <- prometheus.MustNewConstMetric(drainCancelledDesc, prometheus.CounterValue, float64(n.DrainCancelled))
	ch <- prometheus.MustNewConstMetric(streamsClosedDesc, prometheus.CounterValue, float64(n.StreamsClosed))

	if c.src.RefusedConns != nil {
		ch <- prometheus.MustNewConstMetric(refusedConnsDesc, prometheus.CounterValue, float64(c.src.RefusedConns()))
	}
	if c.src.Certificates != nil {
		c.collectCertificates(ch)
	}
}

func (c *Collector) collectTarget(ch chan<- prometheus.Metric, k switcher.KnownTarget) {
	t := k.Target
	addr := t.Addr()
	s := t.Stats()
	for class := 1; class < len(s.Classes); class++ {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(s.Classes[class]), addr, statusClasses[class])
	}
	ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(s.Failed), addr)

	// The proxy's buckets count requests below each bound; Prometheus wants cumulative
	// counts, and the last bucket (no bound) is +Inf, which is the count.
	buckets := make(map[float64]uint64, len(s.Latency)-1)
	var count uint64
	for i, n := range s.Latency {
		count += n
		if i < len(s.Latency)-1 {
			buckets[proxy.LatencyBound(i).Seconds()] = count
		}
	}
	ch <- prometheus.MustNewConstHistogram(durationDesc, count, s.Sum.Seconds(), buckets, addr)

	ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(t.InFlight()), addr)
	ch <- prometheus.MustNewConstMetric(streamsDesc, prometheus.GaugeValue, float64(t.Streams()), addr)
	ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(t.Conns()), addr)
	ch <- prometheus.MustNewConstMetric(roleDesc, prometheus.GaugeValue, 1, addr, string(k.Role))
	for _, h := range healthStates {
		v := 0.0
		if k.Health == h {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(healthDesc, prometheus.GaugeValue, v, addr, h.String())
	}
}

func outcomes(ch chan<- prometheus.Metric, d *prometheus.Desc, o switcher.Outcomes) {
	for _, r := range []struct {
		result string
		n      uint64
	}{{"ok", o.OK}, {"refused", o.Refused}, {"failed", o.Failed}, {"noop", o.NoOp}} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(r.n), r.result)
	}
}

func (c *Collector) collectCertificates(ch chan<- prometheus.Metric) {
	seen := map[string]bool{} // a certificate may list a name twice; a series must be unique
	for _, s := range c.src.Certificates() {
		if s.Mode != conf.TLSACME && s.Mode != conf.TLSFiles || s.NotAfter.IsZero() || seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(s.NotAfter.Unix()), s.Name)
	}
}
