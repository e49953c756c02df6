package deploy

import (
	"fmt"
	"time"

	"github.com/routie/routie/proxy"
)

// Limits say when a new release is doing worse than the one it replaced.
type Limits struct {
	// MaxErrorRate is the share of 5xx answers (the app's, and routie's own 502/504 for it)
	// above which the new target is rolled back, e.g. 0.02. It must also be at least twice
	// the old target's rate, so an app that always fails a little is not blamed for it.
	MaxErrorRate float64
	// MaxLatencyRatio is how many times the old target's p95 the new one's may reach.
	MaxLatencyRatio float64
	// LatencyFloor is a p95 that is never called slow, whatever the ratio: at a few
	// milliseconds, scheduling noise alone can double a p95.
	LatencyFloor time.Duration
	// MinRequests is how many answers a window needs before it is judged at all.
	MinRequests uint64
}

// Verdict is the judgement of one window of the new target against the baseline.
type Verdict struct {
	// Trip is true when the new target must be rolled back.
	Trip bool
	// Figure names what tripped: "error rate" or "p95 latency".
	Figure string
	// New and Baseline are the two values, in words ("7.5%", "12ms").
	New, Baseline string
	// Requests is the number of answers in the window.
	Requests uint64
}

// Reason says in one sentence why the verdict tripped.
func (v Verdict) Reason() string {
	if !v.Trip {
		return ""
	}
	return fmt.Sprintf("%s %s on the new target vs %s on the old one (%d requests)", v.Figure, v.New, v.Baseline, v.Requests)
}

// Judge compares window (the new target's recent answers) with baseline (the old target's
// answers before the switch).
func Judge(baseline, window proxy.StatsSnapshot, l Limits) Verdict {
	n := window.Requests()
	v := Verdict{Requests: n}
	if n < l.MinRequests || n == 0 {
		return v
	}
	rate := float64(window.Errors()) / float64(n)
	var baseRate float64
	if b := baseline.Requests(); b > 0 {
		baseRate = float64(baseline.Errors()) / float64(b)
	}
	if rate > l.MaxErrorRate && rate >= 2*baseRate {
		return Verdict{Trip: true, Figure: "error rate", New: percent(rate), Baseline: percent(baseRate), Requests: n}
	}
	if l.MaxLatencyRatio > 0 && baseline.Requests() >= l.MinRequests {
		p95, base95 := window.Quantile(0.95), baseline.Quantile(0.95)
		if base95 > 0 && p95 > l.LatencyFloor && float64(p95) > l.MaxLatencyRatio*float64(base95) {
			return Verdict{Trip: true, Figure: "p95 latency", New: p95.String(), Baseline: base95.String(), Requests: n}
		}
	}
	return v
}

func percent(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// sample is a target's counters at one moment.
type sample struct {
	at    time.Time
	stats proxy.StatsSnapshot
}

// samples keeps a target's counters over time, so a window is the difference of two samples.
type samples struct {
	list []sample
	keep time.Duration
}

func (s *samples) add(at time.Time, stats proxy.StatsSnapshot) {
	s.list = append(s.list, sample{at, stats})
	// Drop samples older than keep, but always keep one to diff against.
	cut := 0
	for cut < len(s.list)-1 && at.Sub(s.list[cut+1].at) >= s.keep {
		cut++
	}
	s.list = s.list[cut:]
}

// window returns what happened over the last d (or since the first sample, if that is
// shorter), and how long that really was.
func (s *samples) window(d time.Duration) (proxy.StatsSnapshot, time.Duration) {
	if len(s.list) < 2 {
		return proxy.StatsSnapshot{}, 0
	}
	last := s.list[len(s.list)-1]
	from := s.list[0]
	for _, smp := range s.list {
		if last.at.Sub(smp.at) < d {
			break
		}
		from = smp
	}
	return last.stats.Sub(from.stats), last.at.Sub(from.at)
}
