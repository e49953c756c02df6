package proxy

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear: four buckets per doubling, so a bucket's bounds are
// at most 25% apart (fine enough to tell a release 1.5x slower), and finding a bucket is a
// bit-length and a shift on the request path. Bucket 0 counts answers under 62.5µs; the last
// one everything from about 7 s up.
const (
	latencyBuckets = 64
	latencyUnit    = 62500 * time.Nanosecond // a quarter of the first doubling's 250µs
)

// LatencyBucket returns the bucket that counts an answer that took d.
func LatencyBucket(d time.Duration) int {
	u := uint64(max(d, 0) / latencyUnit)
	if u < 4 {
		return int(u)
	}
	exp := bits.Len64(u) - 3 // u>>exp is in [4, 8)
	i := exp*4 + int(u>>exp)
	return min(i, latencyBuckets-1)
}

// LatencyBound returns the upper bound of bucket i: the bucket counts answers that took
// less. The last bucket has no bound (+Inf); LatencyBound gives its lower one.
func LatencyBound(i int) time.Duration {
	if i < 4 {
		return time.Duration(i+1) * latencyUnit
	}
	if i >= latencyBuckets-1 {
		i = latencyBuckets - 2
	}
	exp, m := i/4-1, i%4+4
	return time.Duration(uint64(m+1)<<exp) * latencyUnit
}

// Stats counts what a target answered, with atomic adds only, so the request path never
// waits for whoever reads them (metrics, a deploy's monitor).
type Stats struct {
	// classes counts answers by status class: index 1 for 1xx ... 5 for 5xx.
	classes [6]atomic.Uint64
	// failed counts requests routie answered itself because the target failed (502, 504);
	// they are in classes[5] too.
	failed  atomic.Uint64
	latency [latencyBuckets]atomic.Uint64
	sumNs   atomic.Uint64
}

// StatsSnapshot is a copy of Stats at one moment. Counters only grow, so the difference of
// two snapshots is what happened in between.
type StatsSnapshot struct {
	Classes [6]uint64
	Failed  uint64
	Latency [latencyBuckets]uint64
	Sum     time.Duration
}

// observe records one finished request. Streams are counted by status but kept out of the
// latency histogram: a WebSocket's lifetime is not a response time.
func (s *Stats) observe(status int, took time.Duration, stream, failed bool) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 5
	}
	s.classes[class].Add(1)
	if failed {
		s.failed.Add(1)
	}
	if stream {
		return
	}
	s.latency[LatencyBucket(took)].Add(1)
	s.sumNs.Add(uint64(took))
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	var snap StatsSnapshot
	for i := range s.classes {
		snap.Classes[i] = s.classes[i].Load()
	}
	snap.Failed = s.failed.Load()
	for i := range s.latency {
		snap.Latency[i] = s.latency[i].Load()
	}
	snap.Sum = time.Duration(s.sumNs.Load())
	return snap
}

// Sub returns what happened between earlier and s.
func (s StatsSnapshot) Sub(earlier StatsSnapshot) StatsSnapshot {
	d := s
	for i := range d.Classes {
		d.Classes[i] -= earlier.Classes[i]
	}
	d.Failed -= earlier.Failed
	for i := range d.Latency {
		d.Latency[i] -= earlier.Latency[i]
	}
	d.Sum -= earlier.Sum
	return d
}

// Requests returns the number of answers counted.
func (s StatsSnapshot) Requests() uint64 {
	var n uint64
	for _, c := range s.Classes {
		n += c
	}
	return n
}

// Errors returns the answers that count against a release: 5xx from the app and failures
// routie answered for it.
func (s StatsSnapshot) Errors() uint64 { return s.Classes[5] }

// Quantile estimates the q-quantile (0 < q ≤ 1) of the latency as the upper bound of the
// bucket it falls in; 0 when nothing was timed.
func (s StatsSnapshot) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range s.Latency {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range s.Latency {
		seen += c
		if seen >= rank {
			return LatencyBound(i)
		}
	}
	return LatencyBound(latencyBuckets - 1)
}
