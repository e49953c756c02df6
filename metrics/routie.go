// Package metrics turns routied's state into Prometheus metrics. Everything is read at scrape
// time from the switcher (its targets and its totals), the proxy's per-target counters and
// the certificates, so the request path does no work for metrics beyond the atomic adds the
// proxy makes anyway, and a target the switcher has forgotten has no series left.
//
// The text format is written by hand, not with the Prometheus client library: linking that
// and its Go and process collectors cost routied 2 MiB of resident memory idle and 3 MiB
// once scraped, a quarter of its budget, for a few dozen lines of text per scrape.
package metrics

import (
	"cmp"
	"slices"

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

// routied's own metric families; the help texts say what each counts.
var (
	requestsFamily = family{"routie_requests_total", "counter",
		"Requests answered, by target and status class (1xx to 5xx). The 502 and 504 routied answers for a failing target are 5xx."}
	failuresFamily = family{"routie_target_failures_total", "counter",
		"Requests routied answered itself with 502 or 504 because the target failed or its drain deadline passed; also counted in routie_requests_total."}
	durationFamily = family{"routie_request_duration_seconds", "histogram",
		"Time from a request's arrival to the end of its answer, by target. WebSocket connections and event streams are not timed."}
	inFlightFamily = family{"routie_in_flight_requests", "gauge",
		"HTTP requests the target is serving now."}
	streamsFamily = family{"routie_open_streams", "gauge",
		"WebSocket connections and event streams open to the target now."}
	connsFamily = family{"routie_upstream_connections", "gauge",
		"Connections open from routied to the target now, idle ones included."}
	roleFamily = family{"routie_target_role", "gauge",
		"1 for each target routied holds, labelled with its role: active (receives new requests), canary (receives its share of them), standby (the rollback target) or draining (retired, finishing its requests)."}
	healthFamily = family{"routie_target_health", "gauge",
		"The target's health by its probes: 1 for its state (up, down, or unknown before the first probe), 0 for the others."}
	switchesFamily = family{"routie_switches_total", "counter",
		"Switches by result: ok (traffic moved), refused (health gate failed or another switch in progress), failed (bad target or cancelled), noop (already active)."}
	rollbacksFamily = family{"routie_rollbacks_total", "counter",
		"Rollbacks by result: ok, refused (standby failed its probe or was stopped by a deploy, no standby, or a switch in progress), failed (cancelled), noop."}
	drainFamily = family{"routie_drain_duration_seconds", "summary",
		"Time the drains of retired targets waited for their in-flight requests; the count is the drains that ran to their end."}
	drainCancelledFamily = family{"routie_drain_cancelled_requests_total", "counter",
		"Requests cancelled with a 504 because drain.timeout passed while their target was retired."}
	streamsClosedFamily = family{"routie_drain_closed_streams_total", "counter",
		"WebSocket connections and event streams closed because drain.streams passed while their target was retired."}
	certExpiryFamily = family{"routie_certificate_expiry_timestamp_seconds", "gauge",
		"When the certificate served for the name expires, in seconds since the Unix epoch (tls.mode acme or files). A name without a certificate yet has no series."}
	refusedConnsFamily = family{"routie_refused_connections_total", "counter",
		"Client connections closed on arrival because their IP address held limits.max_conns_per_client connections already."}
)

// statusClasses label routie_requests_total; index i is class i (1xx at 1).
var statusClasses = [...]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

var healthStates = [...]health.Health{health.Up, health.Down, health.Unknown}

// target is one known target as a scrape reports it: its counters are copied once, so its
// request counts and its histogram agree with each other.
type target struct {
	switcher.KnownTarget
	addr  string
	stats proxy.StatsSnapshot
}

// writeRoutie writes routied's own families, each target's series sorted by its address.
func writeRoutie(t *text, src Sources) {
	known := src.Switcher.Known()
	targets := make([]target, len(known))
	for i, k := range known {
		targets[i] = target{KnownTarget: k, addr: k.Target.Addr(), stats: k.Target.Stats()}
	}
	slices.SortFunc(targets, func(a, b target) int { return cmp.Compare(a.addr, b.addr) })
	if len(targets) > 0 {
		writeTargets(t, targets)
	}

	n := src.Switcher.Counters()
	outcomes(t, switchesFamily, n.Switches)
	outcomes(t, rollbacksFamily, n.Rollbacks)
	t.head(drainFamily)
	t.float(drainFamily.name+"_sum", n.DrainTime.Seconds())
	t.uint(drainFamily.name+"_count", n.Drains)
	t.head(drainCancelledFamily)
	t.uint(drainCancelledFamily.name, n.DrainCancelled)
	t.head(streamsClosedFamily)
	t.uint(streamsClosedFamily.name, n.StreamsClosed)

	if src.RefusedConns != nil {
		t.head(refusedConnsFamily)
		t.uint(refusedConnsFamily.name, src.RefusedConns())
	}
	if src.Certificates != nil {
		writeCertificates(t, src.Certificates())
	}
}

func writeTargets(t *text, targets []target) {
	t.head(requestsFamily)
	for _, tg := range targets {
		for class := 1; class < len(tg.stats.Classes); class++ {
			t.uint(requestsFamily.name, tg.stats.Classes[class], "class", statusClasses[class], "target", tg.addr)
		}
	}
	t.head(failuresFamily)
	for _, tg := range targets {
		t.uint(failuresFamily.name, tg.stats.Failed, "target", tg.addr)
	}

	t.head(durationFamily)
	for _, tg := range targets {
		// The proxy's buckets count requests below each bound; Prometheus wants cumulative
		// counts at the exported bounds, and +Inf, which is the count.
		var count uint64
		next := 0
		for i, n := range tg.stats.Latency {
			count += n
			if next < len(latencyBounds) && latencyBounds[next].bucket == i {
				t.uint(durationFamily.name+"_bucket", count, "target", tg.addr, "le", latencyBounds[next].le)
				next++
			}
		}
		t.uint(durationFamily.name+"_bucket", count, "target", tg.addr, "le", "+Inf")
		t.float(durationFamily.name+"_sum", tg.stats.Sum.Seconds(), "target", tg.addr)
		t.uint(durationFamily.name+"_count", count, "target", tg.addr)
	}

	t.head(inFlightFamily)
	for _, tg := range targets {
		t.float(inFlightFamily.name, float64(tg.Target.InFlight()), "target", tg.addr)
	}
	t.head(streamsFamily)
	for _, tg := range targets {
		t.float(streamsFamily.name, float64(tg.Target.Streams()), "target", tg.addr)
	}
	t.head(connsFamily)
	for _, tg := range targets {
		t.float(connsFamily.name, float64(tg.Target.Conns()), "target", tg.addr)
	}
	t.head(roleFamily)
	for _, tg := range targets {
		t.uint(roleFamily.name, 1, "role", string(tg.Role), "target", tg.addr)
	}
	t.head(healthFamily)
	for _, tg := range targets {
		for _, h := range healthStates {
			var v uint64
			if tg.Health == h {
				v = 1
			}
			t.uint(healthFamily.name, v, "state", h.String(), "target", tg.addr)
		}
	}
}

func outcomes(t *text, f family, o switcher.Outcomes) {
	t.head(f)
	t.uint(f.name, o.OK, "result", "ok")
	t.uint(f.name, o.Refused, "result", "refused")
	t.uint(f.name, o.Failed, "result", "failed")
	t.uint(f.name, o.NoOp, "result", "noop")
}

// writeCertificates writes the expiry of each name served in mode "acme" or "files", sorted
// by name; nothing when there is none.
func writeCertificates(t *text, all []routietls.NameStatus) {
	var certs []routietls.NameStatus
	for _, s := range all {
		if (s.Mode == conf.TLSACME || s.Mode == conf.TLSFiles) && !s.NotAfter.IsZero() {
			certs = append(certs, s)
		}
	}
	slices.SortStableFunc(certs, func(a, b routietls.NameStatus) int { return cmp.Compare(a.Name, b.Name) })
	// A certificate may list a name twice; a series must be unique.
	certs = slices.CompactFunc(certs, func(a, b routietls.NameStatus) bool { return a.Name == b.Name })
	if len(certs) == 0 {
		return
	}
	t.head(certExpiryFamily)
	for _, s := range certs {
		t.float(certExpiryFamily.name, float64(s.NotAfter.Unix()), "name", s.Name)
	}
}
