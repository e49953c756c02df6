package metrics

import (
	"strconv"

	"github.com/routie/routie/proxy"
)

// The proxy times requests into log-linear buckets, four per doubling (proxy.LatencyBucket).
// Exporting all 64 would make 65 bucket series per target for Prometheus to store; one per
// doubling, 250µs to 4.096s, and +Inf make 16. Each exported bound is the upper bound of a
// proxy bucket, so the cumulative count at it is exact, not an estimate.
const bucketsPerDoubling = 4

// latencyBound is an exported upper bound: le, and the proxy bucket it closes.
type latencyBound struct {
	bucket int
	le     string
}

// latencyBounds are the exported bounds, in increasing order, +Inf left out.
var latencyBounds = func() []latencyBound {
	var bounds []latencyBound
	// The last bucket has no bound: it is +Inf.
	for i := bucketsPerDoubling - 1; i < len(proxy.StatsSnapshot{}.Latency)-1; i += bucketsPerDoubling {
		bounds = append(bounds, latencyBound{i, strconv.FormatFloat(proxy.LatencyBound(i).Seconds(), 'g', -1, 64)})
	}
	return bounds
}()
