package proxy_test

import (
	"testing"
	"time"

	"github.com/routie/routie/proxy"
)

func TestLatencyBucketsHoldWhatTheirBoundsSay(t *testing.T) {
	for d := time.Duration(0); d < 7*time.Second; d = d*9/8 + time.Microsecond {
		i := proxy.LatencyBucket(d)
		if d >= proxy.LatencyBound(i) {
			t.Fatalf("%v went to bucket %d whose bound is %v", d, i, proxy.LatencyBound(i))
		}
		if i > 0 && d < proxy.LatencyBound(i-1) {
			t.Fatalf("%v went to bucket %d, but bucket %d (bound %v) holds it", d, i, i-1, proxy.LatencyBound(i-1))
		}
	}
	for i := 5; i < 62; i++ {
		if ratio := float64(proxy.LatencyBound(i)) / float64(proxy.LatencyBound(i-1)); ratio > 1.26 {
			t.Fatalf("bounds %v and %v are %.2fx apart", proxy.LatencyBound(i-1), proxy.LatencyBound(i), ratio)
		}
	}
}
